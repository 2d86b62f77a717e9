// Stream duplicate: every input beat leaves on both m0_axis and m1_axis, each side with
// its own handshake. A beat is held until both sides took it; the next input beat is
// taken in the cycle the last side takes the held one, so with both sides ready the
// rate is one beat per clock. Steady state: 1 cycle per beat.
module duplicate #(
    parameter int WIDTH = 8
) (
    input  logic             ap_clk,
    input  logic             ap_rst_n,
    input  logic [WIDTH-1:0] s_axis_tdata,
    input  logic             s_axis_tvalid,
    output logic             s_axis_tready,
    output logic [WIDTH-1:0] m0_axis_tdata,
    output logic             m0_axis_tvalid,
    input  logic             m0_axis_tready,
    output logic [WIDTH-1:0] m1_axis_tdata,
    output logic             m1_axis_tvalid,
    input  logic             m1_axis_tready
);
    logic [WIDTH-1:0] data;
    logic             pend0, pend1;    // the held beat still owed to side 0 / side 1
    assign m0_axis_tdata = data;
    assign m1_axis_tdata = data;
    assign m0_axis_tvalid = pend0;
    assign m1_axis_tvalid = pend1;
    assign s_axis_tready = (~pend0 | m0_axis_tready) & (~pend1 | m1_axis_tready);
    wire in_fire = s_axis_tvalid & s_axis_tready;

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            pend0 <= 1'b0;
            pend1 <= 1'b0;
        end else begin
            pend0 <= in_fire | (pend0 & ~m0_axis_tready);
            pend1 <= in_fire | (pend1 & ~m1_axis_tready);
        end
        if (in_fire) data <= s_axis_tdata;
    end
endmodule
