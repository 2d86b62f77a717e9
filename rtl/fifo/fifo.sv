// Synchronous first-word-fall-through FIFO with valid/ready on both sides.
// Both handshakes are registered, so a FIFO also cuts the ready path between two engines.
//
// SYNC_READ = 0: asynchronous-read memory (registers or LUT-RAM), s_axis_tready = not full,
//   m_axis_tvalid = not empty; holds DEPTH beats. DEPTH >= 2 keeps one beat per clock;
//   DEPTH = 1 halves the rate.
// SYNC_READ = 1: synchronous-read memory that maps to block RAM (RAM_STYLE "block" or
//   "ultra"), followed by a read register and an output register; holds DEPTH + 2 beats,
//   3 cycles from input to output. DEPTH >= 2 keeps one beat per clock; DEPTH = 1 halves it.
module fifo #(
    parameter int DEPTH = 2,
    parameter int WIDTH = 8,
    parameter int SYNC_READ = 0,
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
    logic [CW-1:0] count;            // beats in the memory

    assign s_axis_tready = (count != CW'(DEPTH));
    wire wr = s_axis_tvalid & s_axis_tready;
    logic rd;                        // a beat leaves the memory

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

    if (SYNC_READ == 0) begin : g_async
        assign m_axis_tvalid = (count != '0);
        assign m_axis_tdata = mem[rptr];
        assign rd = m_axis_tvalid & m_axis_tready;
    end else begin : g_sync
        logic [WIDTH-1:0] rdata;
        logic             rvalid;
        wire o_free = ~m_axis_tvalid | m_axis_tready;
        wire load_o = rvalid & o_free;
        wire r_free = ~rvalid | load_o;
        assign rd = (count != '0) & r_free;
        always_ff @(posedge ap_clk) begin
            if (rd) rdata <= mem[rptr];
            if (load_o) m_axis_tdata <= rdata;
            if (!ap_rst_n) begin
                rvalid <= 1'b0;
                m_axis_tvalid <= 1'b0;
            end else begin
                if (r_free) rvalid <= rd;
                if (o_free) m_axis_tvalid <= rvalid;
            end
        end
    end
endmodule
