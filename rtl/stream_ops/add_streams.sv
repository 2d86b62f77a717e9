// Element-wise sum of two streams (the residual join): beat i of s0_axis plus beat i of
// s1_axis, PE lanes each, lane p at [p*A_BITS +: A_BITS] / [p*B_BITS +: B_BITS]; both
// operands signed when SIGNED, the sum wraps to OUT_BITS (two's complement).
// A beat is taken from both inputs together; steady state 1 cycle per beat.
module add_streams #(
    parameter int PE = 2,
    parameter int A_BITS = 4,
    parameter int B_BITS = 4,
    parameter int SIGNED = 1,
    parameter int OUT_BITS = 5
) (
    input  logic                   ap_clk,
    input  logic                   ap_rst_n,
    input  logic [PE*A_BITS-1:0]   s0_axis_tdata,
    input  logic                   s0_axis_tvalid,
    output logic                   s0_axis_tready,
    input  logic [PE*B_BITS-1:0]   s1_axis_tdata,
    input  logic                   s1_axis_tvalid,
    output logic                   s1_axis_tready,
    output logic [PE*OUT_BITS-1:0] m_axis_tdata,
    output logic                   m_axis_tvalid,
    input  logic                   m_axis_tready
);
    wire en = ~m_axis_tvalid | m_axis_tready;
    assign s0_axis_tready = en & s1_axis_tvalid;
    assign s1_axis_tready = en & s0_axis_tvalid;
    wire fire = en & s0_axis_tvalid & s1_axis_tvalid;

    function automatic logic [OUT_BITS-1:0] ext_a(input logic [A_BITS-1:0] v);
        if (SIGNED != 0) ext_a = OUT_BITS'($signed(v));
        else ext_a = OUT_BITS'(v);
    endfunction
    function automatic logic [OUT_BITS-1:0] ext_b(input logic [B_BITS-1:0] v);
        if (SIGNED != 0) ext_b = OUT_BITS'($signed(v));
        else ext_b = OUT_BITS'(v);
    endfunction

    logic [PE*OUT_BITS-1:0] sum;
    always_comb begin
        for (int p = 0; p < PE; p++)
            sum[p*OUT_BITS +: OUT_BITS] = ext_a(s0_axis_tdata[p*A_BITS +: A_BITS])
                                          + ext_b(s1_axis_tdata[p*B_BITS +: B_BITS]);
    end

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) m_axis_tvalid <= 1'b0;
        else if (en) m_axis_tvalid <= fire;
        if (fire) m_axis_tdata <= sum;
    end
endmodule
