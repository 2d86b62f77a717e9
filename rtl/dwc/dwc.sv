// Order-preserving stream width converter: IN_ELEMS -> OUT_ELEMS elements of ELEM_BITS,
// one a multiple of the other. The narrow side runs at one beat per clock, i.e. the wide
// side at its full rate of one beat per R clocks. Element i of a beat at [i*ELEM_BITS +: ELEM_BITS].
module dwc #(
    parameter int IN_ELEMS = 4,
    parameter int OUT_ELEMS = 2,
    parameter int ELEM_BITS = 1
) (
    input  logic                           ap_clk,
    input  logic                           ap_rst_n,
    input  logic [IN_ELEMS*ELEM_BITS-1:0]  s_axis_tdata,
    input  logic                           s_axis_tvalid,
    output logic                           s_axis_tready,
    output logic [OUT_ELEMS*ELEM_BITS-1:0] m_axis_tdata,
    output logic                           m_axis_tvalid,
    input  logic                           m_axis_tready
);
    localparam int IW = IN_ELEMS * ELEM_BITS;
    localparam int OW = OUT_ELEMS * ELEM_BITS;

    initial begin
        if (IN_ELEMS % OUT_ELEMS != 0 && OUT_ELEMS % IN_ELEMS != 0)
            $error("dwc: one of IN_ELEMS, OUT_ELEMS must be a multiple of the other");
    end

    if (IN_ELEMS == OUT_ELEMS) begin : g_pass
        assign m_axis_tdata = s_axis_tdata;
        assign m_axis_tvalid = s_axis_tvalid;
        assign s_axis_tready = m_axis_tready;
        wire unused = ap_clk ^ ap_rst_n;
    end else if (IN_ELEMS > OUT_ELEMS) begin : g_down
        localparam int R = IN_ELEMS / OUT_ELEMS;
        localparam int RW = $clog2(R);
        logic [IW-1:0] buffer;
        logic [RW-1:0] idx;
        logic          full;
        wire last = (idx == RW'(R - 1));
        assign m_axis_tvalid = full;
        assign m_axis_tdata = buffer[idx*OW +: OW];
        assign s_axis_tready = ~full | (m_axis_tready & last);
        always_ff @(posedge ap_clk) begin
            if (!ap_rst_n) begin
                full <= 1'b0;
                idx <= '0;
            end else begin
                if (full && m_axis_tready) begin
                    idx <= last ? '0 : idx + 1'b1;
                    if (last) full <= 1'b0;
                end
                if (s_axis_tvalid && s_axis_tready) full <= 1'b1;
            end
            if (s_axis_tvalid && s_axis_tready) buffer <= s_axis_tdata;
        end
    end else begin : g_up
        localparam int R = OUT_ELEMS / IN_ELEMS;
        localparam int RW = $clog2(R);
        logic [OW-IW-1:0] collect;   // the first R-1 input beats of an output beat
        logic [RW-1:0]    idx;
        wire last = (idx == RW'(R - 1));
        assign s_axis_tready = ~last | ~m_axis_tvalid | m_axis_tready;
        wire in_fire = s_axis_tvalid & s_axis_tready;
        always_ff @(posedge ap_clk) begin
            if (!ap_rst_n) begin
                idx <= '0;
                m_axis_tvalid <= 1'b0;
            end else begin
                if (m_axis_tready) m_axis_tvalid <= 1'b0;
                if (in_fire) begin
                    idx <= last ? '0 : idx + 1'b1;
                    if (last) m_axis_tvalid <= 1'b1;
                end
            end
            if (in_fire) begin
                if (last) m_axis_tdata <= {s_axis_tdata, collect};
                else collect[idx*IW +: IW] <= s_axis_tdata;
            end
        end
    end
endmodule
