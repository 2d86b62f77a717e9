// Leaf of the LUT6 tree: the matches of M <= 3 lanes as a full adder {c, s}, one LUT6 each.
(* keep_hierarchy *)
module bnn_popcount_leaf #(
    parameter int M = 3
) (
    input  logic [M-1:0] x,
    input  logic [M-1:0] w,
    output logic         s,
    output logic         c
);
    logic [M-1:0] m;
    assign m = ~(x ^ w);
    logic [2:0] b;
    assign b = 3'(m);   // lanes beyond M read as 0
    assign s = b[0] ^ b[1] ^ b[2];
    assign c = (b[0] & b[1]) | (b[0] & b[2]) | (b[1] & b[2]);
endmodule
