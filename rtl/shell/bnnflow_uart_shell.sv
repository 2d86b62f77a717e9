// bnnflow_uart_shell: the accelerator (bnnflow_top) behind an 8N1 UART. The host sends each
// image as its input beats of ceil(IN_BITS/8) bytes; the shell answers each output beat with
// ceil(OUT_BITS/8) bytes (a top-1 design: the class index). A power-on reset and the active-low
// rst_n input reset everything. LEDs: [0] toggles per received byte, [1] input overflow,
// [7:2] the low bits of the last byte sent.
module bnnflow_uart_shell #(
    parameter int IN_BITS = 8,
    parameter int OUT_BITS = 8,
    parameter int CLKS_PER_BIT = 217
) (
    input  logic       clk,
    input  logic       rst_n,
    input  logic       uart_rx,
    output logic       uart_tx,
    output logic [7:0] led
);
    // power-on reset from the FPGA's initial register values
    /* verilator lint_off PROCASSINIT */
    logic [4:0] por = 5'd0;
    logic rst_n_q = 1'b0;
    /* verilator lint_on PROCASSINIT */
    always_ff @(posedge clk) begin
        if (!por[4]) por <= por + 5'd1;
        rst_n_q <= por[4] & rst_n;
    end

    logic [7:0] rx_data;
    logic rx_valid;
    logic [IN_BITS-1:0] in_tdata;
    logic in_tvalid, in_tready, overflow;
    logic [OUT_BITS-1:0] out_tdata;
    logic out_tvalid, out_tready;
    logic [7:0] tx_data;
    logic tx_valid, tx_ready;

    bnnflow_uart_rx #(.CLKS_PER_BIT(CLKS_PER_BIT)) rx_i (
        .clk(clk), .rst_n(rst_n_q), .rx(uart_rx), .data(rx_data), .valid(rx_valid));
    bnnflow_bytes_to_beat #(.BITS(IN_BITS)) b2b_i (
        .clk(clk), .rst_n(rst_n_q), .byte_data(rx_data), .byte_valid(rx_valid),
        .m_tdata(in_tdata), .m_tvalid(in_tvalid), .m_tready(in_tready), .overflow(overflow));
    bnnflow_top core_i (
        .ap_clk(clk), .ap_rst_n(rst_n_q),
        .s_axis_tdata(in_tdata), .s_axis_tvalid(in_tvalid), .s_axis_tready(in_tready),
        .m_axis_tdata(out_tdata), .m_axis_tvalid(out_tvalid), .m_axis_tready(out_tready));
    bnnflow_beat_to_bytes #(.BITS(OUT_BITS)) b2y_i (
        .clk(clk), .rst_n(rst_n_q), .s_tdata(out_tdata), .s_tvalid(out_tvalid), .s_tready(out_tready),
        .byte_data(tx_data), .byte_valid(tx_valid), .byte_ready(tx_ready));
    bnnflow_uart_tx #(.CLKS_PER_BIT(CLKS_PER_BIT)) tx_i (
        .clk(clk), .rst_n(rst_n_q), .data(tx_data), .valid(tx_valid), .ready(tx_ready), .tx(uart_tx));

    logic rx_toggle;
    logic [5:0] last_sent;
    always_ff @(posedge clk) begin
        if (!rst_n_q) begin
            rx_toggle <= 1'b0;
            last_sent <= '0;
        end else begin
            if (rx_valid) rx_toggle <= !rx_toggle;
            if (tx_valid && tx_ready) last_sent <= tx_data[5:0];
        end
    end
    assign led = {last_sent, overflow, rx_toggle};
endmodule
