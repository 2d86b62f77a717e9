// Concatenation of two streams along channels (StreamingConcat): per vector, A_BEATS beats
// of s0_axis, then B_BEATS beats of s1_axis, SIMD lanes each, on m_axis; lane p of an input
// at [p*A_BITS +: A_BITS] / [p*B_BITS +: B_BITS] leaves zero-extended at [p*OUT_BITS +: OUT_BITS]
// (OUT_BITS >= A_BITS, B_BITS). Only the input whose turn it is is read: the other one
// waits (its branch buffers in a FIFO). Steady state 1 cycle per output beat.
module streaming_concat #(
    parameter int SIMD = 1,
    parameter int A_BEATS = 1,
    parameter int B_BEATS = 1,
    parameter int A_BITS = 4,
    parameter int B_BITS = 4,
    parameter int OUT_BITS = 4
) (
    input  logic                     ap_clk,
    input  logic                     ap_rst_n,
    input  logic [SIMD*A_BITS-1:0]   s0_axis_tdata,
    input  logic                     s0_axis_tvalid,
    output logic                     s0_axis_tready,
    input  logic [SIMD*B_BITS-1:0]   s1_axis_tdata,
    input  logic                     s1_axis_tvalid,
    output logic                     s1_axis_tready,
    output logic [SIMD*OUT_BITS-1:0] m_axis_tdata,
    output logic                     m_axis_tvalid,
    input  logic                     m_axis_tready
);
    localparam int N = A_BEATS + B_BEATS;
    localparam int KB = N > 1 ? $clog2(N) : 1;

    logic [KB-1:0] k;  // output beat within the vector
    wire sel_b = k >= KB'(A_BEATS);
    wire en = ~m_axis_tvalid | m_axis_tready;
    assign s0_axis_tready = en & ~sel_b;
    assign s1_axis_tready = en & sel_b;
    wire fire = en & (sel_b ? s1_axis_tvalid : s0_axis_tvalid);

    logic [SIMD*OUT_BITS-1:0] beat;
    always_comb begin
        for (int p = 0; p < SIMD; p++)
            beat[p*OUT_BITS +: OUT_BITS] = sel_b ? OUT_BITS'(s1_axis_tdata[p*B_BITS +: B_BITS])
                                                 : OUT_BITS'(s0_axis_tdata[p*A_BITS +: A_BITS]);
    end

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            m_axis_tvalid <= 1'b0;
            k <= '0;
        end else begin
            if (en) m_axis_tvalid <= fire;
            if (fire) k <= (k == KB'(N - 1)) ? '0 : k + 1'b1;
        end
        if (fire) m_axis_tdata <= beat;
    end
endmodule
