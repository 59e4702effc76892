json.o: json.c json.h
