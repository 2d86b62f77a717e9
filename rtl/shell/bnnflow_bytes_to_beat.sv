// bnnflow_bytes_to_beat: collects ceil(BITS/8) bytes, least significant first, into one
// stream beat. Bytes come without back-pressure (a UART); a beat completed while the
// previous one still waits is dropped and `overflow` stays set until reset. The bytes shift
// in from the top (no byte-position decoder: a 196-byte beat indexed by the byte counter
// was the slowest path of sfc-w1a1 on the ECP5 once the MVUs were pipelined).
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
    logic [8*NB-1:0] beat;
    localparam int KW = (NB > 1) ? $clog2(NB) : 1;
    logic [KW-1:0] k;

    assign m_tdata = beat[BITS-1:0];
    logic [8*NB-1:0] shifted;  // this byte above the ones before it
    if (NB == 1) begin : g_one
        assign shifted = byte_data;
    end else begin : g_many
        logic [8*(NB-1)-1:0] acc;  // the beat's bytes so far, the latest at the top
        assign shifted = {byte_data, acc};
        always_ff @(posedge clk) begin
            if (!rst_n) acc <= '0;
            else if (byte_valid) acc <= shifted[8*NB-1:8];
        end
    end

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            beat <= '0;
            k <= '0;
            m_tvalid <= 1'b0;
            overflow <= 1'b0;
        end else begin
            if (m_tvalid && m_tready) m_tvalid <= 1'b0;
            if (byte_valid) begin
                if (k == KW'(NB - 1)) begin
                    k <= '0;
                    if (m_tvalid && !m_tready) overflow <= 1'b1;
                    else begin
                        beat <= shifted;
                        m_tvalid <= 1'b1;
                    end
                end else k <= k + 1'b1;
            end
        end
    end
endmodule
