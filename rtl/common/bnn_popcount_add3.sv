// y = a + b + c (mod 2^W) on one carry chain, for rows whose bits exist where the masks are 1
// (MA >= MB >= MC: a column of h bits fills a, then b, then c; absent bits are constants
// inside this module). A column's things are its bits and the carry t of the column below.
// Three of them (its three bits, or two and the carry) are first summed to their XOR, the
// chain's first operand at this column, and their majority, a carry t into the next column;
// a fourth (the carry, beside three bits) is the chain's second operand. One or two things go
// on the chain's two operands as they are. The chain's sum bit of a column is then a function
// of at most 6 row bits: one LUT6, plus LUTs for the XOR and the majority where a column is
// summed. Kept as its own hierarchy (see bnn_popcount_counter).
(* keep_hierarchy *)
module bnn_popcount_add3 #(
    parameter int W = 4,
    parameter logic [31:0] MA = '1,
    parameter logic [31:0] MB = '1,
    parameter logic [31:0] MC = '1
) (
    input  logic [W-1:0] a,
    input  logic [W-1:0] b,
    input  logic [W-1:0] c,
    output logic [W-1:0] y
);
    // does column k hold three or four things (and so pass a carry t to column k+1)?
    function automatic integer summed(input integer k);
        integer j, n;
        summed = 0;
        for (j = 0; j <= k; j = j + 1) begin
            n = integer'(MA[j]) + integer'(MB[j]) + integer'(MC[j]) + summed;
            summed = (n >= 3) ? 1 : 0;
        end
    endfunction

    logic [W-1:0] ma, mb, mc, x, z;
    logic [W:0] t;   // t[k]: the carry of column k-1 (as a thing of column k)
    assign ma = a & MA[W-1:0];
    assign mb = b & MB[W-1:0];
    assign mc = c & MC[W-1:0];
    assign t[0] = 1'b0;
    for (genvar k = 0; k < W; k++) begin : g_col
        localparam int SUM = summed(k);
        localparam int CIN = (k > 0) ? summed(k - 1) : 0;
        if (SUM != 0) begin : g_sum
            // three things summed: a, b and c (the carry from below then the second operand), or
            // a, b and the carry
            logic third;
            assign third = MC[k] ? mc[k] : t[k];
            assign x[k] = ma[k] ^ mb[k] ^ third;
            assign z[k] = (MC[k] && CIN != 0) ? t[k] : 1'b0;
            assign t[k+1] = (ma[k] & mb[k]) | (ma[k] & third) | (mb[k] & third);
        end else begin : g_pass
            // one or two things: a (or the carry, where a is absent) and b (or the carry)
            assign x[k] = MA[k] ? ma[k] : t[k];
            assign z[k] = MA[k] ? (MB[k] ? mb[k] : t[k]) : 1'b0;
            assign t[k+1] = 1'b0;
        end
    end
    assign y = x + z;
    wire unused = &{1'b0, t[W], mc};   // the carry out of the top column: the sum is below 2^W
endmodule
