// One multiplier-free (or multiplier) lane product: p = x * w, x already extended to PW bits.
// The weight realisations (W_MODE), shared by int_mvu, vvu and fixed_scale:
//   0  bipolar: one bit, 1 -> +1, 0 -> -1; p = +x or -x (add/subtract).
//   1  K-hot: a sum of up to K signed powers of two; term j is a (2+SB)-bit field at
//      [j*(2+SB) +: 2+SB]: low 2 bits the sign code (00 zero, 01 +1, 11 -1; 10 reads as zero),
//      high SB bits the shift; p is a sum of shifted x (shift-add).
//   2  plain WB-bit two's-complement weight and a multiplier.
// Purely combinational.
module lane_product #(
    parameter int W_MODE = 2,
    parameter int WB = 4,       // weight field bits: 1 / K*(2+SB) / the weight's bits for modes 0 / 1 / 2
    parameter int PW = 12,      // product (and x) bits
    parameter int K = 2,
    parameter int SB = 3
) (
    input  logic signed [PW-1:0] x,
    input  logic        [WB-1:0] w,
    output logic signed [PW-1:0] p
);
    localparam int TW = 2 + SB;
    if (W_MODE == 0) begin : g_bipolar
        assign p = w[0] ? x : -x;
    end else if (W_MODE == 1) begin : g_khot
        always_comb begin
            logic signed [PW-1:0] r;
            r = '0;
            for (int j = 0; j < K; j++) begin
                logic [TW-1:0] term;
                term = w[j*TW +: TW];
                if (term[1:0] == 2'b01) r = r + (x <<< term[TW-1:2]);
                else if (term[1:0] == 2'b11) r = r - (x <<< term[TW-1:2]);
            end
            p = r;
        end
    end else begin : g_mult
        assign p = x * PW'($signed(w));
    end
endmodule
