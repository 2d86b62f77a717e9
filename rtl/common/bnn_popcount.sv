// XNOR-popcount (combinational): the number of lanes where x and w agree.
//
// The lanes are summed by a compressor tree shaped for the FPGA's LUTs. LUT_INPUTS = 6
// (Xilinx LUT6 with CARRY4/CARRY8): leaves count 3 lanes each (x, w: 6 inputs, XNOR and
// full adder in one LUT6 per output bit), then bnn_popcount_stage's counters of 9 bits on short
// carry chains reduce the columns of leaf bits to three rows, and one carry-chain adder sums
// those. LUT_INPUTS = 4 (ECP5 LUT4 with CCU2C): bnn_popcount_tree4. The default comes from the
// macro BNNFLOW_LUT_INPUTS, which the ECP5 synthesis scripts set to 4 (flow.boards.synth.read_sv).
//
// Simulation builds of the whole design (flow/sim/rtlsim.py) define BNNFLOW_SIM_COUNTONES and
// count with $countones: one word-level operation in the verilated C++ instead of a tree of
// bit operations (the trees of a CNV-sized design were a third of its simulation time). Both
// trees are proven equal to $countones for every N a unit instantiates (1 to 32: bnn_mvu counts
// at most PC_GROUP lanes at once) by tests/test_popcount_proof.py, and the engine tests
// (cocotb, lint, synthesis, tests/test_popcount.py) read the trees themselves.
`ifndef BNNFLOW_LUT_INPUTS
`define BNNFLOW_LUT_INPUTS 6
`endif
module bnn_popcount #(
    parameter int N = 8,
    parameter int CW = $clog2(N + 1),   // count width
    parameter int LUT_INPUTS = `BNNFLOW_LUT_INPUTS
) (
    input  logic [N-1:0]  x,
    input  logic [N-1:0]  w,
    output logic [CW-1:0] count
);
    localparam int CN = $clog2(N + 1);  // bits the count needs
    logic [CN-1:0] c;
`ifdef BNNFLOW_SIM_COUNTONES
    logic [N-1:0] m;
    assign m = ~(x ^ w);
    assign c = CN'($countones(m));
`else
    if (LUT_INPUTS >= 6) begin : g_lut6
        localparam int L = (N + 2) / 3;                        // leaves (3 lanes, the last 1..3)
        localparam int LC = N / 3 + ((N % 3 == 2) ? 1 : 0);   // leaves of 2 or 3 lanes: a carry
        localparam logic [511:0] H0 = (CN > 1) ? {480'b0, 16'(LC), 16'(L)} : 512'(L);
        logic [L+LC-1:0] leaf;
        for (genvar j = 0; j < L; j++) begin : g_leaf
            localparam int M = (N - 3*j < 3) ? N - 3*j : 3;
            logic s, cy;
            bnn_popcount_leaf #(.M(M)) u_leaf (.x(x[3*j +: M]), .w(w[3*j +: M]), .s(s), .c(cy));
            assign leaf[j] = s;
            if (M >= 2) begin : g_carry
                assign leaf[L + j] = cy;
            end else begin : g_single
                wire unused = cy;
            end
        end
        bnn_popcount_stage #(.CW(CN), .H(H0), .NB(L + LC)) u_stage (.bits(leaf), .count(c));
    end else begin : g_lut4
        bnn_popcount_tree4 #(.N(N)) u_tree (.x(x), .w(w), .count(c));
    end
`endif
    if (CW >= CN) begin : g_wide
        assign count = CW'(c);
    end else begin : g_narrow
        assign count = c[CW-1:0];
        wire unused = &{1'b0, c};
    end
endmodule
