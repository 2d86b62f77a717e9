// One stage of bnn_popcount's compressor tree for 6-input LUTs and carry chains.
//
// The stage holds the bits still to be summed as columns: column k has H[16*k +: 16] bits of
// weight 2^k, packed into `bits` column after column. Each stage replaces them with fewer bits
// by counters (bnn_popcount_counter) and passes the result to the next stage, until every
// column holds at most three bits: a three-row adder (bnn_popcount_add3, one carry chain) then
// gives the count (bits of weight 2^CW and above are dropped: the count is below 2^CW).
//
// A counter anchored at column k takes up to OWN = 7 bits of column k and one bit each of
// columns k+1 and k+2, and gives their sum in up to 4 bits (columns k..k+3): 9 bits in, 4
// out, for 3 LUTs and a carry chain. Columns are scheduled from k = 0 up: column k first lends
// one bit to each counter anchored at k-1, then one to each anchored at k-2, then its own
// bits go to counters of 7 (a last one of 3..6) and the 1 or 2 left over pass to the next stage.
// The next stage's column j lists the counters' outputs (bit 0 of those anchored at j, bit 1 of
// those at j-1, bit 2 of those at j-2, bit 3 of those at j-3), then column j's leftover bits.
module bnn_popcount_stage #(
    parameter int CW = 4,                // count width; columns 0..CW-1, at most 32
    parameter logic [511:0] H = '0,      // column heights, 16 bits per column
    parameter int NB = 1                 // bits in all (the sum of the heights)
) (
    input  logic [NB-1:0] bits,
    output logic [CW-1:0] count
);
    localparam int OWN = 7;    // column-k bits of a full counter: A[0], carry-in, 5 counted
    localparam int PART = 3;   // a column's rest of at least this many bits gets a counter

    function automatic integer height(input logic [511:0] h, input integer k);
        height = (k < 0 || k >= CW) ? 0 : integer'(h[16*k +: 16]);
    endfunction

    // Column k's schedule (what: 0 counters, 1 bits lent to k-1, 2 bits lent to k-2,
    // 3 full counters, 4 bits of the last counter when partial (0 if none), 5 bits left over).
    function automatic integer sched(input logic [511:0] h, input integer k, input integer what);
        integer j, g1, g2, hj, t1, t2, av, nf, rem, part;
        g1 = 0; g2 = 0;
        sched = 0;
        for (j = 0; j <= k; j = j + 1) begin
            hj = height(h, j);
            t1 = (hj < g1) ? hj : g1;
            t2 = (hj - t1 < g2) ? hj - t1 : g2;
            av = hj - t1 - t2;
            nf = av / OWN;
            rem = av % OWN;
            part = (rem >= PART) ? rem : 0;
            g2 = g1;
            g1 = nf + ((part > 0) ? 1 : 0);
            case (what)
                0: sched = g1;
                1: sched = t1;
                2: sched = t2;
                3: sched = nf;
                4: sched = part;
                default: sched = (part > 0) ? 0 : rem;
            endcase
        end
        if (k < 0 || k >= CW) sched = 0;
    endfunction

    // bits of column k taken before its own counters' (lent to counters anchored below)
    function automatic integer lent(input logic [511:0] h, input integer k);
        lent = sched(h, k, 1) + sched(h, k, 2);
    endfunction

    // does counter i anchored at k take a bit of column k+1 (d = 1) or k+2 (d = 2)?
    function automatic integer borrows(input logic [511:0] h, input integer k, input integer i, input integer d);
        borrows = (i < sched(h, k + d, d)) ? 1 : 0;
    endfunction

    function automatic integer own_bits(input logic [511:0] h, input integer k, input integer i);
        own_bits = (i < sched(h, k, 3)) ? OWN : sched(h, k, 4);
    endfunction

    // output bits of counter i anchored at k: enough for its largest sum, none at or above CW
    function automatic integer out_bits(input logic [511:0] h, input integer k, input integer i);
        integer most, n;
        most = own_bits(h, k, i) + 2 * borrows(h, k, i, 1) + 4 * borrows(h, k, i, 2);
        n = $clog2(most + 1);
        out_bits = (n < CW - k) ? n : CW - k;
    endfunction

    // counters anchored at k with more than d output bits: counters 0 .. that number - 1
    // (the sums shrink with i: full counters first, borrowed bits to the first ones)
    function automatic integer wider(input logic [511:0] h, input integer k, input integer d);
        integer i;
        wider = 0;
        if (k >= 0 && k < CW)
            for (i = 0; i < sched(h, k, 0); i = i + 1) wider = wider + ((out_bits(h, k, i) > d) ? 1 : 0);
    endfunction

    // position, in the next stage's column j, of the bits from counters anchored at j-d
    function automatic integer slot(input logic [511:0] h, input integer j, input integer d);
        integer e;
        slot = 0;
        for (e = 0; e < d; e = e + 1) slot = slot + wider(h, j - e, e);
    endfunction

    function automatic logic [511:0] next_heights(input logic [511:0] h);
        integer j;
        next_heights = '0;
        for (j = 0; j < CW; j = j + 1) next_heights[16*j +: 16] = 16'(slot(h, j, 4) + sched(h, j, 5));
    endfunction

    function automatic integer offset(input logic [511:0] h, input integer k);  // first bit of column k
        integer j;
        offset = 0;
        for (j = 0; j < k; j = j + 1) offset = offset + height(h, j);
    endfunction

    function automatic integer is_last(input logic [511:0] h);
        integer k;
        is_last = 1;
        for (k = 0; k < CW; k = k + 1) if (height(h, k) > 3) is_last = 0;
    endfunction

    function automatic logic [31:0] rows_from(input logic [511:0] h, input integer r);  // columns with > r bits
        integer k;
        rows_from = '0;
        for (k = 0; k < CW; k = k + 1) rows_from[k] = (height(h, k) > r) ? 1'b1 : 1'b0;
    endfunction

    if (is_last(H) != 0) begin : g_add
        // at most three bits a column: rows a, b, c (bit r of column k in row r)
        logic [CW-1:0] ra, rb, rc;
        for (genvar k = 0; k < CW; k++) begin : g_col
            localparam int HK = height(H, k);
            localparam int OFF = offset(H, k);
            logic [2:0] col;
            if (HK > 0) begin : g_bits
                assign col = 3'(bits[OFF +: HK]);
            end else begin : g_none
                assign col = 3'b0;
            end
            assign {rc[k], rb[k], ra[k]} = col;
        end
        bnn_popcount_add3 #(.W(CW), .MA(rows_from(H, 0)), .MB(rows_from(H, 1)), .MC(rows_from(H, 2))) u_add (
            .a(ra), .b(rb), .c(rc), .y(count));
    end else begin : g_step
        localparam logic [511:0] HN = next_heights(H);
        localparam int NBN = offset(HN, CW);
        logic [NBN-1:0] nb;
        for (genvar k = 0; k < CW; k++) begin : g_col
            localparam int OFF = offset(H, k) + lent(H, k);   // this column's own bits
            localparam int NOFF = offset(HN, k);
            localparam int NG = sched(H, k, 0);
            localparam int NF = sched(H, k, 3);
            localparam int NL = sched(H, k, 5);
            localparam int PL = NOFF + slot(H, k, 4);
            for (genvar i = 0; i < NG; i++) begin : g_ctr
                localparam int NO = own_bits(H, k, i);
                localparam int B1 = borrows(H, k, i, 1);
                localparam int B2 = borrows(H, k, i, 2);
                localparam int NY = out_bits(H, k, i);
                logic [NY-1:0] y;
                logic a1, a2;
                if (B1 != 0) begin : g_a1
                    localparam int P1 = offset(H, k + 1) + i;
                    assign a1 = bits[P1];
                end else begin : g_a10
                    assign a1 = 1'b0;
                end
                if (B2 != 0) begin : g_a2
                    localparam int P2 = offset(H, k + 2) + sched(H, k + 2, 1) + i;
                    assign a2 = bits[P2];
                end else begin : g_a20
                    assign a2 = 1'b0;
                end
                bnn_popcount_counter #(.OWN(NO), .A1(B1), .A2(B2), .NY(NY)) u_ctr (
                    .own(bits[OFF + OWN*i +: NO]), .a1(a1), .a2(a2), .y(y));
                for (genvar d = 0; d < NY; d++) begin : g_out
                    localparam int PN = offset(HN, k + d) + slot(H, k + d, d) + i;
                    assign nb[PN] = y[d];
                end
            end
            for (genvar e = 0; e < NL; e++) begin : g_pass
                assign nb[PL + e] = bits[OFF + OWN*NF + e];
            end
        end
        bnn_popcount_stage #(.CW(CW), .H(HN), .NB(NBN)) u_next (.bits(nb), .count(count));
    end
endmodule
