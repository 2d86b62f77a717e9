// Population count of an N-bit vector (combinational), shaped for 6-input LUTs.
// A balanced tree of carry-chain adders splits the vector into halves of whole bit
// triples; a leaf (up to 3 bits) is a full adder written as plain logic, so that it
// merges with the binary MVU's XNOR in front of it: 3 lanes = 6 inputs, one LUT6 per
// output bit (an adder operator would be mapped to a carry chain of its own instead).
//
// Simulation builds of the whole design (flow/sim/rtlsim.py) define BNNFLOW_SIM_COUNTONES and
// count with $countones: one word-level operation in the verilated C++ instead of a tree of
// bit operations (the trees of a CNV-sized design were a third of its simulation time). The
// tree is proven equal to $countones for every N a unit instantiates (1 to 32: bnn_mvu counts
// at most PC_GROUP lanes at once) by tests/test_popcount_proof.py, and the engine tests
// (cocotb, lint, synthesis) read the tree itself.
module bnn_popcount #(
    parameter int N = 8,
    parameter int CW = $clog2(N + 1)  // count width
) (
    input  logic [N-1:0]  bits,
    output logic [CW-1:0] count
);
`ifdef BNNFLOW_SIM_COUNTONES
    assign count = CW'($countones(bits));
`else
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
        bnn_popcount #(.N(NL), .CW(CL)) u_lo (.bits(bits[NL-1:0]), .count(cl));
        bnn_popcount #(.N(NH), .CW(CH)) u_hi (.bits(bits[N-1:NL]), .count(ch));
        assign count = CW'(cl) + CW'(ch);
    end
`endif
endmodule
