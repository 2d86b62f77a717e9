// Full adder of a, b and the match of x and w (~(x ^ w); w = 1 passes x through): {k, s},
// 4 inputs, one LUT4 per output. Kept as its own hierarchy so that the LUT mapper keeps the
// ripple of bnn_popcount_ripple instead of widening its sums into 6-input functions.
(* keep_hierarchy *)
module bnn_popcount_fa (
    input  logic a,
    input  logic b,
    input  logic x,
    input  logic w,
    output logic s,
    output logic k
);
    logic c;
    assign c = ~(x ^ w);
    assign s = a ^ b ^ c;
    assign k = (a & b) | (a & c) | (b & c);
endmodule
