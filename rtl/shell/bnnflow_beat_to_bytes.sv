// bnnflow_beat_to_bytes: sends one stream beat as ceil(BITS/8) bytes, least significant first.
module bnnflow_beat_to_bytes #(
    parameter int BITS = 8
) (
    input  logic            clk,
    input  logic            rst_n,
    input  logic [BITS-1:0] s_tdata,
    input  logic            s_tvalid,
    output logic            s_tready,
    output logic [7:0]      byte_data,
    output logic            byte_valid,
    input  logic            byte_ready
);
    localparam int NB = (BITS + 7) / 8;
    logic [8*NB-1:0] beat;
    logic [15:0] k;
    logic busy;

    assign s_tready = !busy;
    assign byte_valid = busy;
    assign byte_data = beat[8*k +: 8];

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            beat <= '0;
            k <= '0;
            busy <= 1'b0;
        end else if (!busy) begin
            if (s_tvalid) begin
                beat <= '0;
                beat[BITS-1:0] <= s_tdata;
                k <= '0;
                busy <= 1'b1;
            end
        end else if (byte_ready) begin
            if (k == 16'(NB - 1)) busy <= 1'b0;
            else k <= k + 16'd1;
        end
    end
endmodule
