// bnnflow_bytes_to_beat: collects ceil(BITS/8) bytes, least significant first, into one
// stream beat. Bytes come without back-pressure (a UART); a beat completed while the
// previous one still waits is dropped and `overflow` stays set until reset.
module bnnflow_bytes_to_beat #(
    parameter int BITS = 8
) (
    input  logic            clk,
    input  logic            rst_n,
    input  logic [7:0]      byte_data,
    input  logic            byte_valid,
    output logic [BITS-1:0] m_tdata,
    output logic            m_tvalid,
    input  logic            m_tready,
    output logic            overflow
);
    localparam int NB = (BITS + 7) / 8;
    logic [8*NB-1:0] acc;
    logic [8*NB-1:0] beat;
    logic [15:0] k;

    assign m_tdata = beat[BITS-1:0];

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            acc <= '0;
            beat <= '0;
            k <= '0;
            m_tvalid <= 1'b0;
            overflow <= 1'b0;
        end else begin
            if (m_tvalid && m_tready) m_tvalid <= 1'b0;
            if (byte_valid) begin
                acc[8*k +: 8] <= byte_data;
                if (k == 16'(NB - 1)) begin
                    k <= '0;
                    if (m_tvalid && !m_tready) overflow <= 1'b1;
                    else begin
                        beat <= acc;
                        beat[8*(NB-1) +: 8] <= byte_data;
                        m_tvalid <= 1'b1;
                    end
                end else k <= k + 16'd1;
            end
        end
    end
endmodule
