// Stream-protocol checkers of the formal proofs (`bnnflow prove`, flow/sim/prove.py).
//
// A generated wrapper (formal_top) instantiates one engine and binds these around its ports:
//   axis_formal_reset   holds ap_rst_n low in the first cycle, high after it;
//   axis_formal_source  the environment of an input port (assumptions): TVALID low in reset,
//                       held until TREADY, TDATA stable while stalled;
//   axis_formal_sink    the checks of an output port (assertions): TVALID low in the first
//                       cycle out of reset, held until TREADY, TDATA stable while stalled;
//                       the output's TREADY is free (any stall pattern); its covers (a beat
//                       leaves; one leaves after a stall) show that the bound reaches output;
//   axis_formal_beats   beats of one input and one output port: no output beat is created
//                       (out * IN_BPF <= in * OUT_BPF + LEAD * IN_BPF) and, with CAP >= 0,
//                       none is lost (in * OUT_BPF - out * IN_BPF <= CAP * OUT_BPF: at most CAP
//                       input beats in flight);
//   axis_formal_index   the beat number of a port, for the wrapper's scoreboard: with a
//                       stimulus (input beat k is the case's beat k), output beat k must equal
//                       the op's expected beat k (numpy semantics, flow.ops testbench_case).
// Counts include the beats of the current cycle. Only the wrapper uses these modules; they
// are read by yosys with -formal and by no synthesis or simulation flow.

module axis_formal_reset (
    input  logic ap_clk,
    output logic ap_rst_n
);
    logic in_reset = 1'b1;
    always_ff @(posedge ap_clk) in_reset <= 1'b0;
    assign ap_rst_n = ~in_reset;
endmodule

module axis_formal_source #(
    parameter int W = 1
) (
    input logic         ap_clk,
    input logic         ap_rst_n,
    input logic [W-1:0] tdata,
    input logic         tvalid,
    input logic         tready
);
    logic         stalled = 1'b0;  // last cycle: valid, not ready, out of reset
    logic [W-1:0] held;
    always_ff @(posedge ap_clk) begin
        stalled <= ap_rst_n & tvalid & ~tready;
        held <= tdata;
    end
    always_comb begin
        if (!ap_rst_n) assume (!tvalid);
        if (ap_rst_n && stalled) begin
            assume (tvalid);
            assume (tdata == held);
        end
    end
endmodule

module axis_formal_sink #(
    parameter int W = 1
) (
    input logic         ap_clk,
    input logic         ap_rst_n,
    input logic [W-1:0] tdata,
    input logic         tvalid,
    input logic         tready
);
    logic         was_running = 1'b0;  // last cycle was out of reset
    logic         stalled = 1'b0;
    logic [W-1:0] held;
    always_ff @(posedge ap_clk) begin
        was_running <= ap_rst_n;
        stalled <= ap_rst_n & tvalid & ~tready;
        held <= tdata;
    end
    always_comb begin
        if (ap_rst_n && !was_running) assert (!tvalid);       // no beat out of reset
        if (ap_rst_n && stalled) begin
            assert (tvalid);                                   // held until taken
            assert (tdata == held);                            // stable while stalled
        end
        // reachability (`mode cover`): a beat leaves, and one leaves after a stall
        if (ap_rst_n) cover (tvalid && tready);
        if (ap_rst_n && stalled) cover (tready);
    end
endmodule

module axis_formal_beats #(
    parameter int IN_BPF = 1,   // beats per frame on the input port
    parameter int OUT_BPF = 1,  // beats per frame on the output port
    parameter int LEAD = 0,     // output beats that may leave before their input share
    parameter int CAP = -1,     // input beats in flight at most (-1: not checked)
    parameter int CW = 8        // counter bits (more than the depth needs)
) (
    input logic ap_clk,
    input logic ap_rst_n,
    input logic in_fire,
    input logic out_fire
);
    logic [CW-1:0] n_in = '0, n_out = '0;
    always_ff @(posedge ap_clk) begin
        if (ap_rst_n) begin
            n_in <= n_in + CW'(in_fire);
            n_out <= n_out + CW'(out_fire);
        end
    end
    wire [31:0] ins = 32'(n_in) + 32'(ap_rst_n & in_fire);
    wire [31:0] outs = 32'(n_out) + 32'(ap_rst_n & out_fire);
    always_comb begin
        assert (outs * IN_BPF <= ins * OUT_BPF + LEAD * IN_BPF);  // no beat created
        if (CAP >= 0) assert (ins * OUT_BPF <= outs * IN_BPF + CAP * OUT_BPF);  // no beat lost
    end
endmodule

// The beat counter of a scoreboard port: beats taken before this cycle.
module axis_formal_index #(
    parameter int CW = 8
) (
    input  logic          ap_clk,
    input  logic          ap_rst_n,
    input  logic          fire,
    output logic [CW-1:0] index
);
    logic [CW-1:0] n = '0;
    always_ff @(posedge ap_clk) if (ap_rst_n && fire) n <= n + 1'b1;
    assign index = n;
endmodule
