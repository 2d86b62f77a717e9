// Input buffer and step sequencer shared by the matrix-vector units (bnn_mvu, int_mvu).
//
// Schedule (as FINN's MVAU): for nf in 0..NF-1, for sf in 0..SF-1, one step per enabled
// clock; step (nf, sf) reads weight word nf*SF+sf (`waddr`) and input word sf (`x_word`).
// Input beats (XW bits each) are written into a ping-pong buffer of two SF-word banks: the
// next frame fills one bank while the current frame is replayed from the other, so
// back-to-back frames cost NF*SF cycles. A step reading a word that arrives in the same
// cycle takes it straight from the bus. `issue` is high when the step is taken (`en` and
// its input word present); `first`/`last_sf`/`nf` describe that step.
module mvu_sequencer #(
    parameter int XW = 8,
    parameter int SF = 4,
    parameter int NF = 2,
    localparam int SFW = (SF > 1) ? $clog2(SF) : 1,
    localparam int NFW = (NF > 1) ? $clog2(NF) : 1,
    localparam int WAW = (NF * SF > 1) ? $clog2(NF * SF) : 1
) (
    input  logic           ap_clk,
    input  logic           ap_rst_n,
    input  logic [XW-1:0]  s_axis_tdata,
    input  logic           s_axis_tvalid,
    output logic           s_axis_tready,
    input  logic           en,        // the pipeline behind advances this cycle
    output logic           issue,     // step (nf, sf) is taken this cycle
    output logic [XW-1:0]  x_word,    // its input word
    output logic           first,     // sf == 0
    output logic           last_sf,   // sf == SF-1
    output logic [NFW-1:0] nf,
    output logic [WAW-1:0] waddr      // nf*SF + sf
);
    localparam int WDEPTH = NF * SF;
    localparam int CNTW = $clog2(SF + 1);

    logic [XW-1:0]   ibuf [2][SF];
    logic [CNTW-1:0] wcnt [2];        // words written into each bank; SF = full / in use
    logic            wr_bank, rd_bank;
    logic [SFW-1:0]  wr_ptr;
    logic [SFW-1:0]  sf;

    assign s_axis_tready = (wcnt[wr_bank] != CNTW'(SF));
    wire in_fire = s_axis_tvalid & s_axis_tready;

    wire word_stored = (CNTW'(sf) < wcnt[rd_bank]);
    wire word_bypass = in_fire && (wr_bank == rd_bank) && (CNTW'(sf) == wcnt[rd_bank]);
    wire last_nf = (nf == NFW'(NF - 1));
    assign issue = en & (word_stored | word_bypass);
    assign last_sf = (sf == SFW'(SF - 1));
    assign first = (sf == '0);
    assign x_word = word_stored ? ibuf[rd_bank][sf] : s_axis_tdata;

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            wcnt[0] <= '0;
            wcnt[1] <= '0;
            wr_bank <= 1'b0;
            wr_ptr  <= '0;
            rd_bank <= 1'b0;
            sf      <= '0;
            nf      <= '0;
            waddr   <= '0;
        end else begin
            if (in_fire) begin
                ibuf[wr_bank][wr_ptr] <= s_axis_tdata;
                if (wr_ptr == SFW'(SF - 1)) begin
                    wr_ptr  <= '0;
                    wr_bank <= ~wr_bank;
                end else begin
                    wr_ptr <= wr_ptr + 1'b1;
                end
            end
            // write count update (release by the sequencer wins only on its own bank)
            for (int b = 0; b < 2; b++) begin
                if (issue && last_sf && last_nf && rd_bank == 1'(b))
                    wcnt[b] <= '0;
                else if (in_fire && wr_bank == 1'(b))
                    wcnt[b] <= wcnt[b] + 1'b1;
            end
            if (issue) begin
                waddr <= (waddr == WAW'(WDEPTH - 1)) ? '0 : waddr + 1'b1;
                if (last_sf) begin
                    sf <= '0;
                    if (last_nf) begin
                        nf <= '0;
                        rd_bank <= ~rd_bank;
                    end else begin
                        nf <= nf + 1'b1;
                    end
                end else begin
                    sf <= sf + 1'b1;
                end
            end
        end
    end
endmodule
