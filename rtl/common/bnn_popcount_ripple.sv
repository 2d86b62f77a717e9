// a + b (+ the match of lane x, w where LANE = 1) as a ripple of LUT4 cells: W (3 or 4; 2 with
// the lane) result bits from two (W-1)-bit operands. With the lane, bit 0 is a full adder of
// a, b and the lane; without, bits 0 and 1 are one cell of 3 LUT4 (bnn_popcount_add2). Every
// further bit is a full adder of 2 LUT4 (bnn_popcount_fa); the last carry is the top bit.
module bnn_popcount_ripple #(
    parameter int W = 4,
    parameter int LANE = 0
) (
    input  logic [W-2:0] a,
    input  logic [W-2:0] b,
    input  logic         x,
    input  logic         w,
    output logic [W-1:0] y
);
    localparam int FIRST = (LANE != 0) ? 1 : 2;   // the first bit left to a plain full adder
    logic [W-1:FIRST] k;                          // k[i]: carry into bit i
    if (LANE != 0) begin : g_lane
        bnn_popcount_fa u_fa0 (.a(a[0]), .b(b[0]), .x(x), .w(w), .s(y[0]), .k(k[1]));
    end else begin : g_add2
        bnn_popcount_add2 u_add2 (.a(a[1:0]), .b(b[1:0]), .s(y[1:0]), .k(k[2]));
        wire unused = &{1'b0, x, w};   // the lane is counted elsewhere
    end
    for (genvar i = FIRST; i < W - 1; i++) begin : g_bit
        bnn_popcount_fa u_fa (.a(a[i]), .b(b[i]), .x(k[i]), .w(1'b1), .s(y[i]), .k(k[i+1]));
    end
    assign y[W-1] = k[W-1];
endmodule
