strata_spank.o: strata_spank.c json.h
