// bnnflow_uart_tx: 8N1 UART transmitter with a valid/ready byte input.
module bnnflow_uart_tx #(
    parameter int CLKS_PER_BIT = 217
) (
    input  logic       clk,
    input  logic       rst_n,
    input  logic [7:0] data,
    input  logic       valid,
    output logic       ready,
    output logic       tx
);
    logic [9:0] frame;   // stop, data[7:0], start; sent LSB first
    logic [3:0] left;    // bits still to send
    logic [15:0] cnt;

    assign ready = (left == 4'd0);
    assign tx = (left == 4'd0) ? 1'b1 : frame[0];

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            frame <= '1;
            left <= '0;
            cnt <= '0;
        end else if (left == 4'd0) begin
            if (valid) begin
                frame <= {1'b1, data, 1'b0};
                left <= 4'd10;
                cnt <= '0;
            end
        end else if (cnt == 16'(CLKS_PER_BIT - 1)) begin
            cnt <= '0;
            frame <= {1'b1, frame[9:1]};
            left <= left - 4'd1;
        end else cnt <= cnt + 16'd1;
    end
endmodule
