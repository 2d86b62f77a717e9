// Label select: index of the largest of L unsigned values (ties -> lowest index).
// PE values per input beat (L/PE beats per frame, one per clock); one output beat per
// frame carrying the index in OUT_BITS bits. The running maximum only moves on a
// strictly larger value, which keeps the lowest index on ties.
module label_select #(
    parameter int L = 10,
    parameter int PE = 2,
    parameter int IN_BITS = 8,
    parameter int OUT_BITS = 4
) (
    input  logic                  ap_clk,
    input  logic                  ap_rst_n,
    input  logic [PE*IN_BITS-1:0] s_axis_tdata,
    input  logic                  s_axis_tvalid,
    output logic                  s_axis_tready,
    output logic [OUT_BITS-1:0]   m_axis_tdata,
    output logic                  m_axis_tvalid,
    input  logic                  m_axis_tready
);
    localparam int NB = L / PE;
    localparam int NBW = (NB > 1) ? $clog2(NB) : 1;
    localparam int IW = (L > 1) ? $clog2(L) : 1;

    initial begin
        if (L % PE != 0) $error("label_select: PE must divide L");
        if (OUT_BITS < IW) $error("label_select: OUT_BITS too small for L");
    end

    logic [NBW-1:0]     beat;
    logic [IN_BITS-1:0] best_v;
    logic [IW-1:0]      best_i;
    wire last_beat = (beat == NBW'(NB - 1));
    // the last beat of a frame needs room in the output register
    assign s_axis_tready = ~last_beat | ~m_axis_tvalid | m_axis_tready;
    wire in_fire = s_axis_tvalid & s_axis_tready;

    // argmax of this beat, merged with the running maximum (first beat starts fresh)
    logic [IN_BITS-1:0] cand_v;
    logic [IW-1:0]      cand_i;
    always_comb begin
        cand_v = best_v;
        cand_i = best_i;
        for (int p = 0; p < PE; p++) begin
            logic [IN_BITS-1:0] v;
            v = s_axis_tdata[p*IN_BITS +: IN_BITS];
            if ((beat == '0 && p == 0) || v > cand_v) begin
                cand_v = v;
                cand_i = IW'(int'(beat) * PE + p);
            end
        end
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
            best_v <= cand_v;
            best_i <= cand_i;
            if (last_beat) m_axis_tdata <= OUT_BITS'(cand_i);
        end
    end
endmodule
