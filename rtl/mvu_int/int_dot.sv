// One integer dot product: dot = sum_i x[i] * w[i] over SIMD lanes, mod 2**ACC_BITS (two's
// complement), x IN_BITS per element (signed when IN_SIGNED), w one WB-bit weight field per
// lane realised as in rtl/common/lane_product.sv (W_MODE 0 add/subtract, 1 K-hot shift-add,
// 2 multiply). Each product fits in PB bits, so the sum is a tree of adders PB+l bits wide at
// level l (at most ACC_BITS): log2(SIMD) levels, each adder only as wide as its sums can be.
// Purely combinational; int_mvu instantiates one per PE.
module int_dot #(
    parameter int SIMD = 2,
    parameter int IN_BITS = 4,
    parameter int IN_SIGNED = 1,
    parameter int W_MODE = 0,
    parameter int WB = 1,
    parameter int W_BITS = 4,
    parameter int K = 2,
    parameter int SB = 3,
    parameter int ACC_BITS = 12
) (
    input  logic [SIMD*IN_BITS-1:0] x,
    input  logic [SIMD*WB-1:0]      w,
    output logic [ACC_BITS-1:0]     dot
);
    localparam int XB = IN_BITS + ((IN_SIGNED != 0) ? 0 : 1);         // x as a signed number
    localparam int PB0 = (W_MODE == 0) ? XB + 1                         // +x or -x
                       : (W_MODE == 1) ? XB + (1 << SB) + $clog2(K + 1) // K shifted copies of x
                       : XB + W_BITS;                                   // x times a W_BITS weight
    localparam int PB = (PB0 < ACC_BITS) ? PB0 : ACC_BITS;
    localparam int LV = (SIMD > 1) ? $clog2(SIMD) : 0;

    function automatic int entries(input int l);  // entries at level l of the tree
        entries = (SIMD + (1 << l) - 1) >> l;
    endfunction
    function automatic int off(input int l);      // first entry of level l
        off = 0;
        for (int j = 0; j < l; j++) off = off + entries(j);
    endfunction

    // entry e of the tree (level 0: the products) at [e*ACC_BITS +: ACC_BITS], sign-extended
    localparam int ENTRIES = off(LV + 1);
    /* verilator lint_off UNUSEDSIGNAL */  // an entry's bits above its level's width repeat its sign
    logic [ENTRIES*ACC_BITS-1:0] t /* verilator split_var */;
    /* verilator lint_on UNUSEDSIGNAL */
    for (genvar i = 0; i < SIMD; i++) begin : g_lane
        wire [IN_BITS-1:0] v = x[i*IN_BITS +: IN_BITS];
        wire signed [ACC_BITS-1:0] xe = (IN_SIGNED != 0) ? ACC_BITS'($signed(v)) : ACC_BITS'($unsigned(v));
        lane_product #(.W_MODE(W_MODE), .WB(WB), .PW(ACC_BITS), .K(K), .SB(SB)) u_prod (
            .x(xe), .w(w[i*WB +: WB]), .p(t[i*ACC_BITS +: ACC_BITS]));
    end
    for (genvar l = 0; l < LV; l++) begin : g_level
        localparam int N = entries(l);
        localparam int WI = (PB + l < ACC_BITS) ? PB + l : ACC_BITS;        // bits of level l's sums
        localparam int WO = (PB + l + 1 < ACC_BITS) ? PB + l + 1 : ACC_BITS;
        for (genvar q = 0; 2 * q < N; q++) begin : g_node
            localparam int A = (off(l) + 2 * q) * ACC_BITS, O = (off(l + 1) + q) * ACC_BITS;
            wire signed [WI-1:0] a = t[A +: WI];
            if (2 * q + 1 < N) begin : g_add
                wire signed [WI-1:0] b = t[A + ACC_BITS +: WI];
                wire signed [WO-1:0] s = WO'(a) + WO'(b);
                assign t[O +: ACC_BITS] = ACC_BITS'(s);
            end else begin : g_pass
                assign t[O +: ACC_BITS] = ACC_BITS'(a);
            end
        end
    end
    localparam int ROOT = off(LV);  // the last level's one entry
    assign dot = t[ROOT*ACC_BITS +: ACC_BITS];
endmodule
