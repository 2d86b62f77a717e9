// bnn_popcount for 4-input LUTs with carry chains (ECP5: LUT4, CCU2C): a tree of adders.
//
// N lanes = two halves of N/2 (and a last lane when N is odd, added as a carry-in). A leaf
// takes 2 lanes (x, w: 4 inputs) and gives their matches as a half adder, one LUT4 per output
// bit. Sums of 5 or more bits are carry-chain adders (CCU2C). Smaller sums, which yosys would
// map to LUTs by itself (the sum of two 3-bit counts: about 10 LUT4, 6-input functions of the
// operands), are ripple adders of LUT4 cells (bnn_popcount_ripple: 5 LUT4 for that sum).
// Each level is its own hierarchy: flattened, yosys would merge the adders into one
// multi-operand sum and build that of full adders in LUTs instead.
(* keep_hierarchy *)
module bnn_popcount_tree4 #(
    parameter int N = 8,
    parameter int CW = $clog2(N + 1)
) (
    input  logic [N-1:0]  x,
    input  logic [N-1:0]  w,
    output logic [CW-1:0] count
);
    if (N <= 2) begin : g_leaf
        logic [N-1:0] m;
        assign m = ~(x ^ w);
        logic [1:0] b, sc;
        assign b = 2'(m);   // a lane beyond N reads as 0
        assign sc = {b[0] & b[1], b[0] ^ b[1]};
        assign count = sc[CW-1:0];
        if (CW < 2) begin : g_one
            wire unused = sc[1];
        end
    end else begin : g_split
        localparam int M = N / 2;
        localparam int CM = $clog2(M + 1);
        localparam int ODD = N % 2;
        logic [CM-1:0] ca, cb;
        bnn_popcount_tree4 #(.N(M)) u_lo (.x(x[M-1:0]), .w(w[M-1:0]), .count(ca));
        bnn_popcount_tree4 #(.N(M)) u_hi (.x(x[2*M-1:M]), .w(w[2*M-1:M]), .count(cb));
        if (CW >= 5) begin : g_chain
            logic odd;
            if (ODD != 0) begin : g_odd
                assign odd = ~(x[N-1] ^ w[N-1]);
            end else begin : g_even
                assign odd = 1'b0;
            end
            assign count = CW'(ca) + CW'(cb) + CW'(odd);
        end else begin : g_ripple
            bnn_popcount_ripple #(.W(CW), .LANE(ODD)) u_add (
                .a(ca), .b(cb), .x(x[N-1]), .w(w[N-1]), .y(count));
        end
    end
endmodule
