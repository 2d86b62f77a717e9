// Label select: indices of the K largest of L unsigned values, largest first; ties go
// to the lower index first (K = 1: the argmax, as torch.argmax).
// PE values per input beat (L/PE beats per frame, one per clock); one output beat per
// frame carrying the K indices, index j (j-th largest) at [j*OUT_BITS +: OUT_BITS].
// A sorted list of the K best (value, index) pairs is kept; each value of a beat is
// inserted in turn, below every stored value it does not strictly exceed, which keeps
// the lower index first on ties (indices arrive in increasing order). K = 1 takes the beat's
// largest value by a compare tree (log2(PE) levels where the insertion chain has PE) and
// keeps it when it strictly beats the earlier beats' best: the same result.
module label_select #(
    parameter int L = 10,
    parameter int PE = 2,
    parameter int IN_BITS = 8,
    parameter int OUT_BITS = 4,
    parameter int K = 1
) (
    input  logic                  ap_clk,
    input  logic                  ap_rst_n,
    input  logic [PE*IN_BITS-1:0] s_axis_tdata,
    input  logic                  s_axis_tvalid,
    output logic                  s_axis_tready,
    output logic [K*OUT_BITS-1:0] m_axis_tdata,
    output logic                  m_axis_tvalid,
    input  logic                  m_axis_tready
);
    localparam int NB = L / PE;
    localparam int NBW = (NB > 1) ? $clog2(NB) : 1;
    localparam int IW = (L > 1) ? $clog2(L) : 1;

    initial begin
        if (L % PE != 0) $error("label_select: PE must divide L");
        if (OUT_BITS < IW) $error("label_select: OUT_BITS too small for L");
        if (K < 1 || K > L) $error("label_select: K must be in 1..L");
    end

    logic [NBW-1:0]     beat;
    logic [IN_BITS-1:0] best_v [K];
    logic [IW-1:0]      best_i [K];
    logic [K-1:0]       best_ok;          // list entry holds a value of this frame
    wire last_beat = (beat == NBW'(NB - 1));
    // the last beat of a frame needs room in the output register
    assign s_axis_tready = ~last_beat | ~m_axis_tvalid | m_axis_tready;
    wire in_fire = s_axis_tvalid & s_axis_tready;

    logic [IN_BITS-1:0] cand_v [K];
    logic [IW-1:0]      cand_i [K];
    logic [K-1:0]       cand_ok;
    if (K == 1) begin : g_argmax
        // The beat's largest value by a tree of pairwise compares (log2(PE) levels, the lower
        // index kept unless the higher one is strictly larger), then merged with the best of
        // the earlier beats (lower indices: replaced only when strictly beaten).
        localparam int LV = (PE > 1) ? $clog2(PE) : 0;
        logic [IN_BITS-1:0] tv [LV+1][PE] /* verilator split_var */;  // level l, entry q
        logic [IW-1:0]      ti [LV+1][PE] /* verilator split_var */;
        for (genvar p = 0; p < PE; p++) begin : g_leaf
            assign tv[0][p] = s_axis_tdata[p*IN_BITS +: IN_BITS];
            assign ti[0][p] = IW'(int'(beat) * PE + p);
        end
        for (genvar l = 0; l < LV; l++) begin : g_level
            localparam int N = (PE + (1 << l) - 1) >> l;  // entries at level l
            for (genvar q = 0; q < PE; q++) begin : g_node
                if (2 * q + 1 < N) begin : g_pair
                    wire hi = tv[l][2*q+1] > tv[l][2*q];
                    assign tv[l+1][q] = hi ? tv[l][2*q+1] : tv[l][2*q];
                    assign ti[l+1][q] = hi ? ti[l][2*q+1] : ti[l][2*q];
                end else if (2 * q < N) begin : g_pass
                    assign tv[l+1][q] = tv[l][2*q];
                    assign ti[l+1][q] = ti[l][2*q];
                end else begin : g_none
                    assign tv[l+1][q] = '0;
                    assign ti[l+1][q] = '0;
                end
            end
        end
        wire take = (beat == '0) | ~best_ok[0] | (tv[LV][0] > best_v[0]);
        assign cand_v[0] = take ? tv[LV][0] : best_v[0];
        assign cand_i[0] = take ? ti[LV][0] : best_i[0];
        assign cand_ok = 1'b1;
    end else begin : g_topk
        // insert the PE values of this beat into the list in turn (the first beat starts empty)
        always_comb begin
            for (int j = 0; j < K; j++) begin
                cand_v[j] = best_v[j];
                cand_i[j] = best_i[j];
            end
            cand_ok = (beat == '0) ? '0 : best_ok;
            for (int p = 0; p < PE; p++) begin
                logic [IN_BITS-1:0] v;
                logic [IW-1:0] i;
                v = s_axis_tdata[p*IN_BITS +: IN_BITS];
                i = IW'(int'(beat) * PE + p);
                // from the bottom up (entry j-1 still holds its old value when j is updated):
                // v belongs at or above j when it strictly beats entry j (or j is empty)
                for (int j = K - 1; j >= 0; j--) begin
                    /* verilator lint_off UNUSEDSIGNAL */
                    int jm;  // used as an index only
                    /* verilator lint_on UNUSEDSIGNAL */
                    jm = (j > 0) ? j - 1 : 0;
                    if (!cand_ok[j] || v > cand_v[j]) begin
                        if (j == 0 || (cand_ok[jm] && !(v > cand_v[jm]))) begin
                            cand_v[j] = v;              // v lands here
                            cand_i[j] = i;
                            cand_ok[j] = 1'b1;
                        end else begin
                            cand_v[j] = cand_v[jm];     // entry j-1 moves down
                            cand_i[j] = cand_i[jm];
                            cand_ok[j] = cand_ok[jm];
                        end
                    end
                end
            end
        end
    end

    logic [K*OUT_BITS-1:0] cand_out;
    always_comb begin
        for (int j = 0; j < K; j++) cand_out[j*OUT_BITS +: OUT_BITS] = OUT_BITS'(cand_i[j]);
    end

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            beat <= '0;
            m_axis_tvalid <= 1'b0;
        end else begin
            if (m_axis_tready) m_axis_tvalid <= 1'b0;
            if (in_fire) begin
                beat <= last_beat ? '0 : beat + 1'b1;
                if (last_beat) m_axis_tvalid <= 1'b1;
            end
        end
        if (in_fire) begin
            for (int j = 0; j < K; j++) begin
                best_v[j] <= cand_v[j];
                best_i[j] <= cand_i[j];
            end
            best_ok <= cand_ok;
            if (last_beat) m_axis_tdata <= cand_out;
        end
    end
endmodule
