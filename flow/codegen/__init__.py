"""Code generation: the stitched RTL top and the Vitis-HLS C++ top."""
