// Threshold counts of PE lanes: lane p's output is the number of thresholds t (of T) with
// x[p] >= thr[p][t]. Lane p's input at x[p*IN_BITS +: IN_BITS], its threshold t at
// thr[(p*T+t)*TB +: TB]; both unsigned (SIGNED=0) or two's complement (SIGNED=1), compared
// exactly after extension to CMPW bits, one more than the wider of the two. A signed pair is
// compared as unsigned numbers with their sign bits flipped (the same order).
//
// Purely combinational: one comparator per (lane, threshold) and a count of the results.
// In the verilated C++ the two loops are unrolled up to UNROLL_MAX compares: a compare then reads
// a constant part-select, several times cheaper per simulated cycle than the loop's computed
// one (a CNV input layer's 255 thresholds were a third of the design's simulation time). Wider
// units stay loops (unroll_disable): unrolled, the PE*T compares of a wide layer were half the
// C++ of a small design and half its compile time. Both forms describe the same logic.
module thresh_count #(
    parameter int PE = 2,
    parameter int IN_BITS = 8,
    parameter int TB = 8,
    parameter int T = 3,
    parameter int SIGNED = 0,
    parameter int OUT_BITS = 2
) (
    input  logic [PE*IN_BITS-1:0]  x,
    input  logic [PE*T*TB-1:0]     thr,
    output logic [PE*OUT_BITS-1:0] cnt
);
    localparam int CMPW = ((IN_BITS > TB) ? IN_BITS : TB) + 1;
    localparam logic [CMPW-1:0] FLIP = (SIGNED != 0) ? CMPW'(1) << (CMPW - 1) : '0;

    localparam int UNROLL_MAX = 256;  // compares

    // the same loops twice: a Verilator pragma cannot depend on a parameter
    if (PE * T <= UNROLL_MAX) begin : g_unrolled
        always_comb begin
            /*verilator unroll_full*/
            for (int p = 0; p < PE; p++) begin
                logic [CMPW-1:0] a, th;
                logic [OUT_BITS-1:0] c;
                a = ((SIGNED != 0) ? CMPW'($signed(x[p*IN_BITS +: IN_BITS])) : CMPW'(x[p*IN_BITS +: IN_BITS])) ^ FLIP;
                c = '0;
                /*verilator unroll_full*/
                for (int t = 0; t < T; t++) begin
                    th = ((SIGNED != 0) ? CMPW'($signed(thr[(p*T+t)*TB +: TB])) : CMPW'(thr[(p*T+t)*TB +: TB])) ^ FLIP;
                    c = c + OUT_BITS'(a >= th);
                end
                cnt[p*OUT_BITS +: OUT_BITS] = c;
            end
        end
    end else begin : g_loops
        always_comb begin
            /*verilator unroll_disable*/
            for (int p = 0; p < PE; p++) begin
                logic [CMPW-1:0] a, th;
                logic [OUT_BITS-1:0] c;
                a = ((SIGNED != 0) ? CMPW'($signed(x[p*IN_BITS +: IN_BITS])) : CMPW'(x[p*IN_BITS +: IN_BITS])) ^ FLIP;
                c = '0;
                /*verilator unroll_disable*/
                for (int t = 0; t < T; t++) begin
                    th = ((SIGNED != 0) ? CMPW'($signed(thr[(p*T+t)*TB +: TB])) : CMPW'(thr[(p*T+t)*TB +: TB])) ^ FLIP;
                    c = c + OUT_BITS'(a >= th);
                end
                cnt[p*OUT_BITS +: OUT_BITS] = c;
            end
        end
    end
endmodule
