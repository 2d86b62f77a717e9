// DP16KD (ECP5 16 Kb block RAM) for simulating yosys netlists: yosys ships it as a blackbox.
// Modelled: data widths 18, 9, 4, 2 and 1 on either port. The array is 1024 words of 18 bits,
// two 9-bit halves (ADx3 picks one for the narrow widths); x18 writes take ADx1/ADx0 as byte
// enables of bits 17:9 / 8:0; x4, x2 and x1 use the low 8 bits of a half (ADx2..ADx0), as
// yosys' memory mapping (brams_16kd.txt: widths 1 2 4 9 18, byte 9) assumes. Write
// modes NORMAL / WRITETHROUGH / READBEFOREWRITE, REGMODE NOREG / OUTREG, RESETMODE SYNC /
// ASYNC (the reset clears the outputs), chip select decode 0b000, INITVAL_00..3F (16 words of
// 20 bits each, the data in the low 18) as yosys' brams_map_16kd.v packs them. Any other
// configuration stops the simulation at time 0 rather than simulate it wrongly.
/* verilator lint_off MULTIDRIVEN */
/* verilator lint_off WIDTH */
module DP16KD(
  input DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0,
  input ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0,
  input CEA, OCEA, CLKA, WEA, RSTA,
  input CSA2, CSA1, CSA0,
  output DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0,
  input DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
  input ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0,
  input CEB, OCEB, CLKB, WEB, RSTB,
  input CSB2, CSB1, CSB0,
  output DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0
);
    parameter DATA_WIDTH_A = 18;
    parameter DATA_WIDTH_B = 18;
    parameter REGMODE_A = "NOREG";
    parameter REGMODE_B = "NOREG";
    parameter RESETMODE = "SYNC";
    parameter ASYNC_RESET_RELEASE = "SYNC";
    parameter CSDECODE_A = "0b000";
    parameter CSDECODE_B = "0b000";
    parameter WRITEMODE_A = "NORMAL";
    parameter WRITEMODE_B = "NORMAL";
    parameter CLKAMUX = "CLKA";
    parameter CLKBMUX = "CLKB";
    parameter GSR = "ENABLED";
    parameter INIT_DATA = "STATIC";
    parameter WID = 0;
    parameter INITVAL_00 = 320'h0;
    parameter INITVAL_01 = 320'h0;
    parameter INITVAL_02 = 320'h0;
    parameter INITVAL_03 = 320'h0;
    parameter INITVAL_04 = 320'h0;
    parameter INITVAL_05 = 320'h0;
    parameter INITVAL_06 = 320'h0;
    parameter INITVAL_07 = 320'h0;
    parameter INITVAL_08 = 320'h0;
    parameter INITVAL_09 = 320'h0;
    parameter INITVAL_0A = 320'h0;
    parameter INITVAL_0B = 320'h0;
    parameter INITVAL_0C = 320'h0;
    parameter INITVAL_0D = 320'h0;
    parameter INITVAL_0E = 320'h0;
    parameter INITVAL_0F = 320'h0;
    parameter INITVAL_10 = 320'h0;
    parameter INITVAL_11 = 320'h0;
    parameter INITVAL_12 = 320'h0;
    parameter INITVAL_13 = 320'h0;
    parameter INITVAL_14 = 320'h0;
    parameter INITVAL_15 = 320'h0;
    parameter INITVAL_16 = 320'h0;
    parameter INITVAL_17 = 320'h0;
    parameter INITVAL_18 = 320'h0;
    parameter INITVAL_19 = 320'h0;
    parameter INITVAL_1A = 320'h0;
    parameter INITVAL_1B = 320'h0;
    parameter INITVAL_1C = 320'h0;
    parameter INITVAL_1D = 320'h0;
    parameter INITVAL_1E = 320'h0;
    parameter INITVAL_1F = 320'h0;
    parameter INITVAL_20 = 320'h0;
    parameter INITVAL_21 = 320'h0;
    parameter INITVAL_22 = 320'h0;
    parameter INITVAL_23 = 320'h0;
    parameter INITVAL_24 = 320'h0;
    parameter INITVAL_25 = 320'h0;
    parameter INITVAL_26 = 320'h0;
    parameter INITVAL_27 = 320'h0;
    parameter INITVAL_28 = 320'h0;
    parameter INITVAL_29 = 320'h0;
    parameter INITVAL_2A = 320'h0;
    parameter INITVAL_2B = 320'h0;
    parameter INITVAL_2C = 320'h0;
    parameter INITVAL_2D = 320'h0;
    parameter INITVAL_2E = 320'h0;
    parameter INITVAL_2F = 320'h0;
    parameter INITVAL_30 = 320'h0;
    parameter INITVAL_31 = 320'h0;
    parameter INITVAL_32 = 320'h0;
    parameter INITVAL_33 = 320'h0;
    parameter INITVAL_34 = 320'h0;
    parameter INITVAL_35 = 320'h0;
    parameter INITVAL_36 = 320'h0;
    parameter INITVAL_37 = 320'h0;
    parameter INITVAL_38 = 320'h0;
    parameter INITVAL_39 = 320'h0;
    parameter INITVAL_3A = 320'h0;
    parameter INITVAL_3B = 320'h0;
    parameter INITVAL_3C = 320'h0;
    parameter INITVAL_3D = 320'h0;
    parameter INITVAL_3E = 320'h0;
    parameter INITVAL_3F = 320'h0;

    localparam [17:0] MASK_A = (18'd1 << (DATA_WIDTH_A > 9 ? 9 : DATA_WIDTH_A)) - 18'd1;
    localparam [17:0] MASK_B = (18'd1 << (DATA_WIDTH_B > 9 ? 9 : DATA_WIDTH_B)) - 18'd1;
    localparam [2:0] LOW_A = DATA_WIDTH_A == 4 ? 3'b100 : DATA_WIDTH_A == 2 ? 3'b110 : DATA_WIDTH_A == 1 ? 3'b111 : 3'b000;
    localparam [2:0] LOW_B = DATA_WIDTH_B == 4 ? 3'b100 : DATA_WIDTH_B == 2 ? 3'b110 : DATA_WIDTH_B == 1 ? 3'b111 : 3'b000;
    reg [17:0] mem [0:1023];
    integer i;
    initial begin
        if (!((DATA_WIDTH_A == 18 || DATA_WIDTH_A == 9 || DATA_WIDTH_A == 4 || DATA_WIDTH_A == 2 || DATA_WIDTH_A == 1)
              && (DATA_WIDTH_B == 18 || DATA_WIDTH_B == 9 || DATA_WIDTH_B == 4 || DATA_WIDTH_B == 2 || DATA_WIDTH_B == 1)
              && CSDECODE_A == "0b000" && CSDECODE_B == "0b000"
              && (REGMODE_A == "NOREG" || REGMODE_A == "OUTREG") && (REGMODE_B == "NOREG" || REGMODE_B == "OUTREG")
              && (RESETMODE == "SYNC" || RESETMODE == "ASYNC"))) begin
            $display("DP16KD: unsupported configuration (data widths %0d/%0d) in %m", DATA_WIDTH_A, DATA_WIDTH_B);
            $fatal(1, "DP16KD configuration not modelled");
        end
        for (i = 0; i < 16; i = i + 1) begin
            mem[0*16 + i] = INITVAL_00[i*20 +: 18];
            mem[1*16 + i] = INITVAL_01[i*20 +: 18];
            mem[2*16 + i] = INITVAL_02[i*20 +: 18];
            mem[3*16 + i] = INITVAL_03[i*20 +: 18];
            mem[4*16 + i] = INITVAL_04[i*20 +: 18];
            mem[5*16 + i] = INITVAL_05[i*20 +: 18];
            mem[6*16 + i] = INITVAL_06[i*20 +: 18];
            mem[7*16 + i] = INITVAL_07[i*20 +: 18];
            mem[8*16 + i] = INITVAL_08[i*20 +: 18];
            mem[9*16 + i] = INITVAL_09[i*20 +: 18];
            mem[10*16 + i] = INITVAL_0A[i*20 +: 18];
            mem[11*16 + i] = INITVAL_0B[i*20 +: 18];
            mem[12*16 + i] = INITVAL_0C[i*20 +: 18];
            mem[13*16 + i] = INITVAL_0D[i*20 +: 18];
            mem[14*16 + i] = INITVAL_0E[i*20 +: 18];
            mem[15*16 + i] = INITVAL_0F[i*20 +: 18];
            mem[16*16 + i] = INITVAL_10[i*20 +: 18];
            mem[17*16 + i] = INITVAL_11[i*20 +: 18];
            mem[18*16 + i] = INITVAL_12[i*20 +: 18];
            mem[19*16 + i] = INITVAL_13[i*20 +: 18];
            mem[20*16 + i] = INITVAL_14[i*20 +: 18];
            mem[21*16 + i] = INITVAL_15[i*20 +: 18];
            mem[22*16 + i] = INITVAL_16[i*20 +: 18];
            mem[23*16 + i] = INITVAL_17[i*20 +: 18];
            mem[24*16 + i] = INITVAL_18[i*20 +: 18];
            mem[25*16 + i] = INITVAL_19[i*20 +: 18];
            mem[26*16 + i] = INITVAL_1A[i*20 +: 18];
            mem[27*16 + i] = INITVAL_1B[i*20 +: 18];
            mem[28*16 + i] = INITVAL_1C[i*20 +: 18];
            mem[29*16 + i] = INITVAL_1D[i*20 +: 18];
            mem[30*16 + i] = INITVAL_1E[i*20 +: 18];
            mem[31*16 + i] = INITVAL_1F[i*20 +: 18];
            mem[32*16 + i] = INITVAL_20[i*20 +: 18];
            mem[33*16 + i] = INITVAL_21[i*20 +: 18];
            mem[34*16 + i] = INITVAL_22[i*20 +: 18];
            mem[35*16 + i] = INITVAL_23[i*20 +: 18];
            mem[36*16 + i] = INITVAL_24[i*20 +: 18];
            mem[37*16 + i] = INITVAL_25[i*20 +: 18];
            mem[38*16 + i] = INITVAL_26[i*20 +: 18];
            mem[39*16 + i] = INITVAL_27[i*20 +: 18];
            mem[40*16 + i] = INITVAL_28[i*20 +: 18];
            mem[41*16 + i] = INITVAL_29[i*20 +: 18];
            mem[42*16 + i] = INITVAL_2A[i*20 +: 18];
            mem[43*16 + i] = INITVAL_2B[i*20 +: 18];
            mem[44*16 + i] = INITVAL_2C[i*20 +: 18];
            mem[45*16 + i] = INITVAL_2D[i*20 +: 18];
            mem[46*16 + i] = INITVAL_2E[i*20 +: 18];
            mem[47*16 + i] = INITVAL_2F[i*20 +: 18];
            mem[48*16 + i] = INITVAL_30[i*20 +: 18];
            mem[49*16 + i] = INITVAL_31[i*20 +: 18];
            mem[50*16 + i] = INITVAL_32[i*20 +: 18];
            mem[51*16 + i] = INITVAL_33[i*20 +: 18];
            mem[52*16 + i] = INITVAL_34[i*20 +: 18];
            mem[53*16 + i] = INITVAL_35[i*20 +: 18];
            mem[54*16 + i] = INITVAL_36[i*20 +: 18];
            mem[55*16 + i] = INITVAL_37[i*20 +: 18];
            mem[56*16 + i] = INITVAL_38[i*20 +: 18];
            mem[57*16 + i] = INITVAL_39[i*20 +: 18];
            mem[58*16 + i] = INITVAL_3A[i*20 +: 18];
            mem[59*16 + i] = INITVAL_3B[i*20 +: 18];
            mem[60*16 + i] = INITVAL_3C[i*20 +: 18];
            mem[61*16 + i] = INITVAL_3D[i*20 +: 18];
            mem[62*16 + i] = INITVAL_3E[i*20 +: 18];
            mem[63*16 + i] = INITVAL_3F[i*20 +: 18];
        end
    end

    // port A
    wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
    wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
    wire csa = {CSA2, CSA1, CSA0} == 3'b000;
    wire [9:0] wa = ada[13:4];
    wire [17:0] olda = mem[wa];
    wire [4:0] offa = DATA_WIDTH_A == 18 ? 5'd0 : (ada[3] ? 5'd9 : 5'd0) + {2'd0, ada[2:0] & LOW_A};
    wire [17:0] wma = DATA_WIDTH_A == 18 ? {{9{ada[1]}}, {9{ada[0]}}} : MASK_A << offa;
    wire [17:0] newa = (olda & ~wma) | ((DATA_WIDTH_A == 18 ? dia : (dia & MASK_A) << offa) & wma);
    wire [17:0] rda_old = DATA_WIDTH_A == 18 ? olda : (olda >> offa) & MASK_A;
    wire [17:0] rda_new = DATA_WIDTH_A == 18 ? newa : (newa >> offa) & MASK_A;
    wire clka = CLKAMUX == "INV" ? ~CLKA : CLKA;
    reg [17:0] qa = 18'd0;   // the array's output latch
    reg [17:0] ra = 18'd0;   // the output register (REGMODE_A "OUTREG")
    always @(posedge clka) begin
        if (CEA && csa && WEA) mem[wa] <= newa;
        if (RESETMODE == "SYNC" && RSTA) qa <= 18'd0;
        else if (CEA && csa) begin
            if (!WEA) qa <= rda_old;
            else if (WRITEMODE_A == "WRITETHROUGH") qa <= rda_new;
            else if (WRITEMODE_A == "READBEFOREWRITE") qa <= rda_old;
        end
        if (RESETMODE == "SYNC" && RSTA) ra <= 18'd0;
        else if (OCEA) ra <= qa;
    end
    always @(posedge RSTA) if (RESETMODE == "ASYNC") begin qa <= 18'd0; ra <= 18'd0; end
    assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = REGMODE_A == "OUTREG" ? ra : qa;

    // port B
    wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};
    wire [17:0] dib = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};
    wire csb = {CSB2, CSB1, CSB0} == 3'b000;
    wire [9:0] wb = adb[13:4];
    wire [17:0] oldb = mem[wb];
    wire [4:0] offb = DATA_WIDTH_B == 18 ? 5'd0 : (adb[3] ? 5'd9 : 5'd0) + {2'd0, adb[2:0] & LOW_B};
    wire [17:0] wmb = DATA_WIDTH_B == 18 ? {{9{adb[1]}}, {9{adb[0]}}} : MASK_B << offb;
    wire [17:0] newb = (oldb & ~wmb) | ((DATA_WIDTH_B == 18 ? dib : (dib & MASK_B) << offb) & wmb);
    wire [17:0] rdb_old = DATA_WIDTH_B == 18 ? oldb : (oldb >> offb) & MASK_B;
    wire [17:0] rdb_new = DATA_WIDTH_B == 18 ? newb : (newb >> offb) & MASK_B;
    wire clkb = CLKBMUX == "INV" ? ~CLKB : CLKB;
    reg [17:0] qb = 18'd0;   // the array's output latch
    reg [17:0] rb = 18'd0;   // the output register (REGMODE_B "OUTREG")
    always @(posedge clkb) begin
        if (CEB && csb && WEB) mem[wb] <= newb;
        if (RESETMODE == "SYNC" && RSTB) qb <= 18'd0;
        else if (CEB && csb) begin
            if (!WEB) qb <= rdb_old;
            else if (WRITEMODE_B == "WRITETHROUGH") qb <= rdb_new;
            else if (WRITEMODE_B == "READBEFOREWRITE") qb <= rdb_old;
        end
        if (RESETMODE == "SYNC" && RSTB) rb <= 18'd0;
        else if (OCEB) rb <= qb;
    end
    always @(posedge RSTB) if (RESETMODE == "ASYNC") begin qb <= 18'd0; rb <= 18'd0; end
    assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = REGMODE_B == "OUTREG" ? rb : qb;

endmodule
/* verilator lint_on WIDTH */
/* verilator lint_on MULTIDRIVEN */
