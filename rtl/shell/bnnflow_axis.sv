// bnnflow_axis: bnnflow_top with AXI-Stream ports for AXI DMA. TDATA is padded to
// AXI_IN_BITS / AXI_OUT_BITS (data in the low bits, zero above). The input TLAST ends a batch
// at the frame that contains it; m_axis_tlast is raised on the last output beat of that frame,
// so one S2MM transfer returns exactly the outputs of one MM2S transfer. Up to BATCHES batch
// ends may be in flight.
module bnnflow_axis #(
    parameter int IN_BITS = 8,
    parameter int OUT_BITS = 8,
    parameter int AXI_IN_BITS = 8,
    parameter int AXI_OUT_BITS = 8,
    parameter int IN_BEATS = 1,
    parameter int OUT_BEATS = 1,
    parameter int BATCHES = 16
) (
    input  logic                    ap_clk,
    input  logic                    ap_rst_n,
    /* verilator lint_off UNUSEDSIGNAL */  // the padding above IN_BITS is ignored
    input  logic [AXI_IN_BITS-1:0]  s_axis_tdata,
    /* verilator lint_on UNUSEDSIGNAL */
    input  logic                    s_axis_tvalid,
    output logic                    s_axis_tready,
    input  logic                    s_axis_tlast,
    output logic [AXI_OUT_BITS-1:0] m_axis_tdata,
    output logic                    m_axis_tvalid,
    input  logic                    m_axis_tready,
    output logic                    m_axis_tlast
);
    localparam int AW = (BATCHES > 1) ? $clog2(BATCHES) : 1;

    logic core_tready;
    logic [OUT_BITS-1:0] core_tdata;
    logic full;

    bnnflow_top core_i (
        .ap_clk(ap_clk), .ap_rst_n(ap_rst_n),
        .s_axis_tdata(s_axis_tdata[IN_BITS-1:0]), .s_axis_tvalid(s_axis_tvalid && !full),
        .s_axis_tready(core_tready),
        .m_axis_tdata(core_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready));

    always_comb begin
        m_axis_tdata = '0;
        m_axis_tdata[OUT_BITS-1:0] = core_tdata;
    end

    // frames per batch, from the input side to the output side
    logic [31:0] batch_len [BATCHES];
    logic [AW-1:0] wr, rd;
    logic [AW:0] count;
    assign full = (count == (AW+1)'(BATCHES));
    assign s_axis_tready = core_tready && !full;

    logic [31:0] in_beat, in_frames, out_beat, out_frames;
    logic seen_last;
    wire in_fire = s_axis_tvalid && s_axis_tready;
    wire in_frame_end = in_fire && (in_beat == 32'(IN_BEATS - 1));
    wire push = in_frame_end && (seen_last || s_axis_tlast);
    wire out_fire = m_axis_tvalid && m_axis_tready;
    wire out_frame_end = (out_beat == 32'(OUT_BEATS - 1));
    assign m_axis_tlast = out_frame_end && (count != '0) && (out_frames + 32'd1 == batch_len[rd]);
    wire pop = out_fire && m_axis_tlast;

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            wr <= '0;
            rd <= '0;
            count <= '0;
            in_beat <= '0;
            in_frames <= '0;
            out_beat <= '0;
            out_frames <= '0;
            seen_last <= 1'b0;
        end else begin
            if (in_fire) begin
                if (in_frame_end) begin
                    in_beat <= '0;
                    seen_last <= 1'b0;
                    in_frames <= push ? '0 : in_frames + 32'd1;
                end else begin
                    in_beat <= in_beat + 32'd1;
                    if (s_axis_tlast) seen_last <= 1'b1;
                end
            end
            if (push) begin
                batch_len[wr] <= in_frames + 32'd1;
                wr <= (wr == AW'(BATCHES - 1)) ? '0 : wr + AW'(1);
            end
            if (out_fire) begin
                if (out_frame_end) begin
                    out_beat <= '0;
                    out_frames <= pop ? '0 : out_frames + 32'd1;
                end else out_beat <= out_beat + 32'd1;
            end
            if (pop) rd <= (rd == AW'(BATCHES - 1)) ? '0 : rd + AW'(1);
            count <= count + (AW+1)'(push) - (AW+1)'(pop);
        end
    end
endmodule
