// Sum of up to 9 bits on a carry chain: A = {a2, a1, own[0]} (weights 4, 2, 1) plus the
// count of own[2..6] (weight 1) plus own[1] as the carry-in. The count is written as
// logic, so that each of its bits and the chain's sum bit of that position share one LUT6
// (an adder operator here would be merged with the chain into a soft compressor); positions
// with no count bit pass A through. Kept as its own hierarchy so that the LUT mapper takes it
// as drawn instead of reshaping it together with its neighbours.
(* keep_hierarchy *)
module bnn_popcount_counter #(
    parameter int OWN = 7,   // bits of weight 1 (3..7)
    parameter int A1 = 1,    // a1 is used
    parameter int A2 = 1,    // a2 is used
    parameter int NY = 4     // output bits kept (the sum is below 2^NY)
) (
    input  logic [OWN-1:0] own,
    input  logic           a1,
    input  logic           a2,
    output logic [NY-1:0]  y
);
    logic [6:0] o;
    assign o = 7'(own);
    logic [4:0] v;
    assign v = o[6:2];
    logic s1, c1, s2, c2, k;
    assign s1 = v[0] ^ v[1] ^ v[2];
    assign c1 = (v[0] & v[1]) | (v[0] & v[2]) | (v[1] & v[2]);
    assign s2 = v[3] ^ v[4];
    assign c2 = v[3] & v[4];
    assign k = s1 & s2;
    logic [2:0] a, b;
    assign b = {(c1 & c2) | (c1 & k) | (c2 & k), c1 ^ c2 ^ k, s1 ^ s2};
    assign a = {(A2 != 0) ? a2 : 1'b0, (A1 != 0) ? a1 : 1'b0, o[0]};
    logic [3:0] sum;
    assign sum = {1'b0, a} + {1'b0, b} + {3'b0, o[1]};
    assign y = sum[NY-1:0];
    wire unused = &{1'b0, a1, a2, sum};   // a1, a2 unused where A1, A2 = 0; sum[3:NY] always 0
endmodule
