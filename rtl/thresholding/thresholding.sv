// Multi-threshold unit: out[c] = number of t with in[c] >= thr[c][t].
// C channels per frame, PE channels per beat (C/PE beats per frame, one per clock).
// Thresholds: memory of depth NF = C/PE, word PE*T*TB bits, threshold t of lane p at
// bits [(p*T+t)*TB +: TB] (two's complement when IN_SIGNED). SHARED: every channel has the
// same thresholds, and the memory holds the one word of every fold (synthesis turns it into
// constant compares).
// Pipeline: S1 registers the input beat and reads the thresholds of its fold,
// S2 compares and counts (rtl/common/thresh_count.sv) into the output register; both
// advance on `en`.
module thresholding #(
    parameter int C = 4,
    parameter int PE = 2,
    parameter int IN_BITS = 8,
    parameter int IN_SIGNED = 1,
    parameter int T = 3,
    parameter int TB = 8,
    parameter int OUT_BITS = 2,
    parameter int SHARED = 0,
    parameter THRESH_FILE = ""
) (
    input  logic                   ap_clk,
    input  logic                   ap_rst_n,
    input  logic [PE*IN_BITS-1:0]  s_axis_tdata,
    input  logic                   s_axis_tvalid,
    output logic                   s_axis_tready,
    output logic [PE*OUT_BITS-1:0] m_axis_tdata,
    output logic                   m_axis_tvalid,
    input  logic                   m_axis_tready
);
    localparam int NF = C / PE;
    localparam int NFW = (NF > 1) ? $clog2(NF) : 1;
    localparam int THRW = PE * T * TB;
    localparam int DEPTH = (SHARED != 0) ? 1 : NF;
    localparam int AW = (DEPTH > 1) ? $clog2(DEPTH) : 1;

    initial begin
        if (C % PE != 0) $error("thresholding: PE must divide C");
    end

    logic [THRW-1:0] tmem [DEPTH];
    initial begin
        if (THRESH_FILE != "") $readmemh(THRESH_FILE, tmem);
    end

    wire en = ~m_axis_tvalid | m_axis_tready;
    logic v1;
    assign s_axis_tready = en;
    wire in_fire = s_axis_tvalid & en;

    logic [NFW-1:0]       nf;
    logic [PE*IN_BITS-1:0] x1;
    logic [THRW-1:0]      thr1;
    wire [AW-1:0] taddr = (SHARED != 0) ? '0 : AW'(nf);
    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            nf <= '0;
            v1 <= 1'b0;
        end else if (en) begin
            v1 <= s_axis_tvalid;
            if (s_axis_tvalid) nf <= (nf == NFW'(NF - 1)) ? '0 : nf + 1'b1;
        end
        if (in_fire) begin
            x1 <= s_axis_tdata;
            thr1 <= tmem[taddr];
        end
    end

    logic [PE*OUT_BITS-1:0] out_c;
    thresh_count #(.PE(PE), .IN_BITS(IN_BITS), .TB(TB), .T(T), .SIGNED(IN_SIGNED), .OUT_BITS(OUT_BITS))
        u_cmp (.x(x1), .thr(thr1), .cnt(out_c));

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) m_axis_tvalid <= 1'b0;
        else if (en) m_axis_tvalid <= v1;
        if (en && v1) m_axis_tdata <= out_c;
    end
endmodule
