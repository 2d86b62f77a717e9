// Population count of an N-bit vector as a balanced adder tree (combinational).
// The tree splits the vector in halves recursively; leaves of up to 3 bits are
// summed directly, so every LUT level sees small adders.
module bnn_popcount #(
    parameter int N = 8,
    parameter int CW = $clog2(N + 1)  // count width
) (
    input  logic [N-1:0]  bits,
    output logic [CW-1:0] count
);
    if (N <= 3) begin : g_leaf
        always_comb begin
            count = '0;
            for (int i = 0; i < N; i++) count = count + CW'(bits[i]);
        end
    end else begin : g_split
        localparam int NL = N / 2;
        localparam int NH = N - NL;
        localparam int CL = $clog2(NL + 1);
        localparam int CH = $clog2(NH + 1);
        logic [CL-1:0] cl;
        logic [CH-1:0] ch;
        bnn_popcount #(.N(NL), .CW(CL)) u_lo (.bits(bits[NL-1:0]), .count(cl));
        bnn_popcount #(.N(NH), .CW(CH)) u_hi (.bits(bits[N-1:NL]), .count(ch));
        assign count = CW'(cl) + CW'(ch);
    end
endmodule
