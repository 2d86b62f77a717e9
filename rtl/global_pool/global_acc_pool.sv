// NHWC global accumulation pool: the per-channel sum of an H x W x C image (the average's
// numerator). Input H*W*C/PE beats of PE elements (IN_BITS, signed when IN_SIGNED) in
// (y, x, c) order; output C/PE beats of PE sums (OUT_BITS two's complement, or unsigned
// when IN_SIGNED=0) at the end of the frame.
// Steady state: H*W*C/PE cycles per frame (one input beat per clock; the C/PE output beats
// leave while the last pixel's beats come in).
module global_acc_pool #(
    parameter int H = 2,
    parameter int W = 2,
    parameter int C = 4,
    parameter int PE = 2,
    parameter int IN_BITS = 4,
    parameter int IN_SIGNED = 0,
    parameter int OUT_BITS = 6
) (
    input  logic                    ap_clk,
    input  logic                    ap_rst_n,
    input  logic [PE*IN_BITS-1:0]   s_axis_tdata,
    input  logic                    s_axis_tvalid,
    output logic                    s_axis_tready,
    output logic [PE*OUT_BITS-1:0]  m_axis_tdata,
    output logic                    m_axis_tvalid,
    input  logic                    m_axis_tready
);
    localparam int CF = C / PE;
    localparam int NPIX = H * W;
    localparam int CFW = (CF > 1) ? $clog2(CF) : 1;
    localparam int PXW = (NPIX > 1) ? $clog2(NPIX) : 1;

    initial begin
        if (C % PE != 0) $error("global_acc_pool: PE must divide C");
    end

    logic [PE*OUT_BITS-1:0] acc [CF];
    logic [CFW-1:0] cf;
    logic [PXW-1:0] pix;
    wire last_cf = (cf == CFW'(CF - 1));
    wire last_pix = (pix == PXW'(NPIX - 1));
    assign s_axis_tready = ~last_pix | ~m_axis_tvalid | m_axis_tready;
    wire in_fire = s_axis_tvalid & s_axis_tready;

    function automatic logic [OUT_BITS-1:0] ext(input logic [IN_BITS-1:0] v);
        if (IN_SIGNED != 0) ext = OUT_BITS'($signed(v));
        else ext = OUT_BITS'(v);
    endfunction

    logic [PE*OUT_BITS-1:0] sum;
    always_comb begin
        for (int p = 0; p < PE; p++)
            sum[p*OUT_BITS +: OUT_BITS] = (pix == '0 ? '0 : acc[cf][p*OUT_BITS +: OUT_BITS])
                                          + ext(s_axis_tdata[p*IN_BITS +: IN_BITS]);
    end

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            cf <= '0;
            pix <= '0;
            m_axis_tvalid <= 1'b0;
        end else begin
            if (m_axis_tready) m_axis_tvalid <= 1'b0;
            if (in_fire) begin
                cf <= last_cf ? '0 : cf + 1'b1;
                if (last_cf) pix <= last_pix ? '0 : pix + 1'b1;
                if (last_pix) m_axis_tvalid <= 1'b1;
            end
        end
        if (in_fire) begin
            acc[cf] <= sum;
            if (last_pix) m_axis_tdata <= sum;
        end
    end
endmodule
