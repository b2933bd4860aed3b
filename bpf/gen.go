package bpf

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86" -target bpfel -type weft_conn_event -type weft_data_event -type weft_proc_event -type weft_proc_info_event -type weft_event_kind -type weft_direction -type weft_role -type weft_data_op -type weft_proto -type weft_cause_kind -type weft_stream_event weft c/weft.bpf.c -- -I./c
