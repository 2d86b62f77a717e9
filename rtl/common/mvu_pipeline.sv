// The pipeline skeleton of every matrix-vector unit (bnn_mvu, int_mvu): everything but the
// per-lane product. The unit around it supplies the combinational dot product of one step
// (`dot`, PE lanes of DW bits) from the registered input word `x1` and weight word `w1`;
// the skeleton registers it, accumulates it over the SF synapse folds and thresholds it.
//
// Schedule (as FINN's MVAU): NF = MH/PE neuron folds, SF = MW/SIMD synapse folds, one step
// per clock, input words replayed from a ping-pong buffer (rtl/common/mvu_sequencer.sv).
// Pipeline: issue -> S0 (weight read) -> S1 (weight and input word registered: `x1`,
//   `w1`) -> [DOT_LAT register stages inside the unit, clocked on `dot_en`] -> S2 (the
//   unit's products, registered here; threshold read) -> S3 (accumulate over sf, threshold
//   word registered again) -> S4 (threshold compare, output register; rtl/common/mvu_output.sv). All stages advance together on `en`
//   (the output's skid register empty).
//
// Weight memory: depth NF*SF, word nf*SF+sf, WW bits. `dot` lanes are unsigned (SIGNED=0,
// popcounts) or two's complement (SIGNED=1) and extended to ACCW bits before accumulation.
module mvu_pipeline #(
    parameter int XW = 8,          // input word (beat) bits
    parameter int WW = 8,          // weight word bits
    parameter int DW = 8,          // bits of one lane of the step's dot product
    parameter int ACCW = 8,        // accumulator bits
    parameter int SIGNED = 0,
    parameter int DOT_LAT = 0,     // register stages of the unit between x1/w1 and `dot` (0 or 1)
    parameter int PE = 2,
    parameter int NF = 2,
    parameter int SF = 2,
    parameter int USE_THRESH = 0,
    parameter int T = 1,
    parameter int TB = 8,
    parameter int OUT_BITS = 8,
    parameter WEIGHTS_FILE = "",
    parameter THRESH_FILE = "",
    /* verilator lint_off UNUSEDPARAM */
    parameter RAM_STYLE = "auto"   // only read by synthesis (ram_style attribute of the weights)
    /* verilator lint_on UNUSEDPARAM */
) (
    input  logic                     ap_clk,
    input  logic                     ap_rst_n,
    input  logic [XW-1:0]            s_axis_tdata,
    input  logic                     s_axis_tvalid,
    output logic                     s_axis_tready,
    output logic [PE*OUT_BITS-1:0]   m_axis_tdata,
    output logic                     m_axis_tvalid,
    input  logic                     m_axis_tready,
    output logic [XW-1:0]            x1,     // S1: the step's input word
    output logic [WW-1:0]            w1,     // S1: the step's weight word
    output logic                     dot_en, // the unit's own registers advance on it
    input  logic [PE*DW-1:0]         dot     // the unit's dot product of x1 and w1, DOT_LAT steps later
);
    localparam int WDEPTH = NF * SF;
    localparam int NFW = (NF > 1) ? $clog2(NF) : 1;
    localparam int WAW = (WDEPTH > 1) ? $clog2(WDEPTH) : 1;

    // ---------------- input buffer and step sequencer ----------------
    logic en;  // all stages advance together (from u_out: its skid register is empty)
    assign dot_en = en;
    initial begin
        if (DOT_LAT != 0 && DOT_LAT != 1) $error("mvu_pipeline: DOT_LAT must be 0 or 1");
    end
    logic                 issue, first, last_sf;
    logic [XW-1:0]        x_word;
    logic [NFW-1:0]       nf;
    logic [WAW-1:0]       waddr;
    mvu_sequencer #(.XW(XW), .SF(SF), .NF(NF)) u_seq (
        .ap_clk, .ap_rst_n, .s_axis_tdata, .s_axis_tvalid, .s_axis_tready,
        .en, .issue, .x_word, .first, .last_sf, .nf, .waddr);

    // ---------------- weight memory ----------------
    (* ram_style = RAM_STYLE *) logic [WW-1:0] wmem [WDEPTH];
    initial begin
        if (WEIGHTS_FILE != "") $readmemh(WEIGHTS_FILE, wmem);
    end

    // ---------------- S0: weight read ----------------
    // The memory's read register; S1 registers its word once more in the fabric, so that
    // the unit's products start from a flip-flop and not from the block RAM's slow output.
    logic                 v0, first0, last0;
    logic [NFW-1:0]       nf0;
    logic [WW-1:0]        w0;
    logic [XW-1:0]        x0;
    always_ff @(posedge ap_clk) begin
        if (en) begin
            w0 <= wmem[waddr];
            x0 <= x_word;
            first0 <= first;
            last0 <= last_sf;
            nf0 <= nf;
        end
        if (!ap_rst_n) v0 <= 1'b0;
        else if (en) v0 <= issue;
    end

    // ---------------- S1 ----------------
    logic                 v1, first1, last1;
    logic [NFW-1:0]       nf1;
    always_ff @(posedge ap_clk) begin
        if (en) begin
            w1 <= w0;
            x1 <= x0;
            first1 <= first0;
            last1 <= last0;
            nf1 <= nf0;
        end
        if (!ap_rst_n) v1 <= 1'b0;
        else if (en) v1 <= v0;
    end

    // ---------------- the unit's own stage (DOT_LAT = 1): the step's controls wait with it ----------------
    logic           vd, firstd, lastd;
    logic [NFW-1:0] nfd;
    if (DOT_LAT == 0) begin : g_dot_comb
        assign {vd, firstd, lastd, nfd} = {v1, first1, last1, nf1};
    end else begin : g_dot_reg
        always_ff @(posedge ap_clk) begin
            if (en) begin
                firstd <= first1;
                lastd <= last1;
                nfd <= nf1;
            end
            if (!ap_rst_n) vd <= 1'b0;
            else if (en) vd <= v1;
        end
    end

    // ---------------- S2: the unit's products, registered ----------------
    logic           v2, first2, last2;
    logic [DW-1:0]  dot2 [PE];
    always_ff @(posedge ap_clk) begin
        if (en) begin
            for (int p = 0; p < PE; p++) dot2[p] <= dot[p*DW +: DW];
            first2 <= firstd;
            last2 <= lastd;
        end
        if (!ap_rst_n) v2 <= 1'b0;
        else if (en) v2 <= vd;
    end

    // ---------------- S3: accumulate ----------------
    logic            v3;
    logic [ACCW-1:0] acc [PE];
    always_ff @(posedge ap_clk) begin
        if (en && v2) begin
            for (int p = 0; p < PE; p++)
                acc[p] <= (first2 ? '0 : acc[p])
                          + ((SIGNED != 0) ? ACCW'($signed(dot2[p])) : ACCW'($unsigned(dot2[p])));
        end
        if (!ap_rst_n) v3 <= 1'b0;
        else if (en) v3 <= v2 & last2;
    end

    // ---------------- S4: thresholds / output register ----------------
    logic [PE*ACCW-1:0] acc_lanes;
    always_comb for (int p = 0; p < PE; p++) acc_lanes[p*ACCW +: ACCW] = acc[p];
    mvu_output #(.PE(PE), .NF(NF), .ACCW(ACCW), .SIGNED(SIGNED), .USE_THRESH(USE_THRESH), .T(T), .TB(TB),
                 .OUT_BITS(OUT_BITS), .THRESH_FILE(THRESH_FILE)) u_out (
        .ap_clk, .ap_rst_n, .en, .nfd, .v3, .acc(acc_lanes), .m_axis_tdata, .m_axis_tvalid, .m_axis_tready);
endmodule
