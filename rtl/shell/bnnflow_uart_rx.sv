// bnnflow_uart_rx: 8N1 UART receiver. The line is synchronised with two flops, each bit is
// sampled in its middle; a byte with a bad stop bit is dropped. `valid` pulses for one cycle.
module bnnflow_uart_rx #(
    parameter int CLKS_PER_BIT = 217
) (
    input  logic       clk,
    input  logic       rst_n,
    input  logic       rx,
    output logic [7:0] data,
    output logic       valid
);
    typedef enum logic [1:0] {IDLE, START, DATA, STOP} state_t;
    state_t state;
    logic [1:0] sync;
    logic [15:0] cnt;
    logic [2:0] nbit;
    logic [7:0] shift;
    wire line = sync[1];

    always_ff @(posedge clk) begin
        sync <= {sync[0], rx};
        valid <= 1'b0;
        if (!rst_n) begin
            state <= IDLE;
            sync <= 2'b11;
            cnt <= '0;
            nbit <= '0;
            shift <= '0;
            data <= '0;
        end else begin
            unique case (state)
                IDLE: begin
                    cnt <= '0;
                    if (!line) state <= START;
                end
                START: begin
                    if (cnt == 16'((CLKS_PER_BIT - 1) / 2)) begin
                        cnt <= '0;
                        nbit <= '0;
                        state <= line ? IDLE : DATA;
                    end else cnt <= cnt + 16'd1;
                end
                DATA: begin
                    if (cnt == 16'(CLKS_PER_BIT - 1)) begin
                        cnt <= '0;
                        shift <= {line, shift[7:1]};
                        if (nbit == 3'd7) state <= STOP;
                        nbit <= nbit + 3'd1;
                    end else cnt <= cnt + 16'd1;
                end
                STOP: begin
                    if (cnt == 16'(CLKS_PER_BIT - 1)) begin
                        cnt <= '0;
                        state <= IDLE;
                        if (line) begin
                            data <= shift;
                            valid <= 1'b1;
                        end
                    end else cnt <= cnt + 16'd1;
                end
            endcase
        end
    end
endmodule
