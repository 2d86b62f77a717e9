// Multi-threshold unit: out[c] = number of t with in[c] >= thr[c][t].
// C channels per frame, PE channels per beat (C/PE beats per frame, one per clock).
// Thresholds: memory of depth NF = C/PE, word PE*T*TB bits, threshold t of lane p at
// bits [(p*T+t)*TB +: TB] (two's complement when IN_SIGNED).
// Pipeline: S1 registers the input beat and reads the thresholds of its fold,
// S2 compares and counts into the output register; both advance on `en`.
module thresholding #(
    parameter int C = 4,
    parameter int PE = 2,
    parameter int IN_BITS = 8,
    parameter int IN_SIGNED = 1,
    parameter int T = 3,
    parameter int TB = 8,
    parameter int OUT_BITS = 2,
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
    localparam int CMPW = ((IN_BITS > TB) ? IN_BITS : TB) + 1;

    initial begin
        if (C % PE != 0) $error("thresholding: PE must divide C");
    end

    logic [THRW-1:0] tmem [NF];
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
            thr1 <= tmem[nf];
        end
    end

    function automatic logic signed [CMPW-1:0] ext_in(input logic [IN_BITS-1:0] v);
        if (IN_SIGNED != 0) ext_in = CMPW'($signed(v));
        else ext_in = CMPW'(v);
    endfunction
    function automatic logic signed [CMPW-1:0] ext_thr(input logic [TB-1:0] v);
        if (IN_SIGNED != 0) ext_thr = CMPW'($signed(v));
        else ext_thr = CMPW'(v);
    endfunction

    logic [PE*OUT_BITS-1:0] out_c;
    always_comb begin
        for (int p = 0; p < PE; p++) begin
            logic [OUT_BITS-1:0] cnt;
            cnt = '0;
            for (int t = 0; t < T; t++)
                if (ext_in(x1[p*IN_BITS +: IN_BITS]) >= ext_thr(thr1[(p*T+t)*TB +: TB]))
                    cnt = cnt + 1'b1;
            out_c[p*OUT_BITS +: OUT_BITS] = cnt;
        end
    end

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) m_axis_tvalid <= 1'b0;
        else if (en) m_axis_tvalid <= v1;
        if (en && v1) m_axis_tdata <= out_c;
    end
endmodule
