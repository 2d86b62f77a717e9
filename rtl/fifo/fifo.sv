// Synchronous first-word-fall-through FIFO with valid/ready on both sides.
// Both handshakes are registered (s_axis_tready = not full, m_axis_tvalid = not empty),
// so a FIFO also cuts the ready path between two engines. DEPTH >= 2 keeps one beat
// per clock; DEPTH = 1 halves the rate.
module fifo #(
    parameter int DEPTH = 2,
    parameter int WIDTH = 8,
    /* verilator lint_off UNUSEDPARAM */
    parameter RAM_STYLE = "auto"  // only read by synthesis (ram_style attribute)
    /* verilator lint_on UNUSEDPARAM */
) (
    input  logic             ap_clk,
    input  logic             ap_rst_n,
    input  logic [WIDTH-1:0] s_axis_tdata,
    input  logic             s_axis_tvalid,
    output logic             s_axis_tready,
    output logic [WIDTH-1:0] m_axis_tdata,
    output logic             m_axis_tvalid,
    input  logic             m_axis_tready
);
    localparam int AW = (DEPTH > 1) ? $clog2(DEPTH) : 1;
    localparam int CW = $clog2(DEPTH + 1);

    (* ram_style = RAM_STYLE *) logic [WIDTH-1:0] mem [DEPTH];
    logic [AW-1:0] wptr, rptr;
    logic [CW-1:0] count;

    assign s_axis_tready = (count != CW'(DEPTH));
    assign m_axis_tvalid = (count != '0);
    assign m_axis_tdata = mem[rptr];
    wire wr = s_axis_tvalid & s_axis_tready;
    wire rd = m_axis_tvalid & m_axis_tready;

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            wptr <= '0;
            rptr <= '0;
            count <= '0;
        end else begin
            if (wr) wptr <= (wptr == AW'(DEPTH - 1)) ? '0 : wptr + 1'b1;
            if (rd) rptr <= (rptr == AW'(DEPTH - 1)) ? '0 : rptr + 1'b1;
            if (wr & ~rd) count <= count + 1'b1;
            else if (rd & ~wr) count <= count - 1'b1;
        end
        if (wr) mem[wptr] <= s_axis_tdata;
    end
endmodule
