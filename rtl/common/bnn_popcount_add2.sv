// a + b of two 2-bit operands: s = the low 2 bits, k = the carry into bit 2; 4 inputs, one LUT4
// per output. Kept as its own hierarchy (see bnn_popcount_fa).
(* keep_hierarchy *)
module bnn_popcount_add2 (
    input  logic [1:0] a,
    input  logic [1:0] b,
    output logic [1:0] s,
    output logic       k
);
    logic k0;
    assign k0 = a[0] & b[0];
    assign s = {a[1] ^ b[1] ^ k0, a[0] ^ b[0]};
    assign k = (a[1] & b[1]) | (a[1] & k0) | (b[1] & k0);
endmodule
