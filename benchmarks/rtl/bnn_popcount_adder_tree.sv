// bnn_popcount as it was before the compressor tree (rtl/common/bnn_popcount.sv): kept as the
// reference of benchmarks/bench_synth.py's LUT-per-lane table only; the flow does not use it.
//
// Population count of an N-bit vector (combinational), shaped for 6-input LUTs.
// A balanced tree of carry-chain adders splits the vector into halves of whole bit
// triples; a leaf (up to 3 bits) is a full adder written as plain logic, so that it
// merges with the binary MVU's XNOR in front of it: 3 lanes = 6 inputs, one LUT6 per
// output bit (an adder operator would be mapped to a carry chain of its own instead).
module bnn_popcount_adder_tree #(
    parameter int N = 8,
    parameter int CW = $clog2(N + 1)  // count width
) (
    input  logic [N-1:0]  bits,
    output logic [CW-1:0] count
);
    if (N <= 3) begin : g_leaf
        logic [2:0] b;
        assign b = 3'(bits);
        logic [1:0] sc;     // full adder: {carry, sum}
        assign sc = {(b[0] & b[1]) | (b[0] & b[2]) | (b[1] & b[2]), b[0] ^ b[1] ^ b[2]};
        if (CW >= 2) begin : g_wide
            assign count = CW'(sc);
        end else begin : g_narrow
            assign count = sc[0];   // N = 1: the carry is always 0
            wire unused = sc[1];
        end
    end else begin : g_split
        localparam int NL = 3 * ((N / 3 + 1) / 2);   // whole triples in the lower half
        localparam int NH = N - NL;
        localparam int CL = $clog2(NL + 1);
        localparam int CH = $clog2(NH + 1);
        logic [CL-1:0] cl;
        logic [CH-1:0] ch;
        bnn_popcount_adder_tree #(.N(NL), .CW(CL)) u_lo (.bits(bits[NL-1:0]), .count(cl));
        bnn_popcount_adder_tree #(.N(NH), .CW(CH)) u_hi (.bits(bits[N-1:NL]), .count(ch));
        assign count = CW'(cl) + CW'(ch);
    end
endmodule
