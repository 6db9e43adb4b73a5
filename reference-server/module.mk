# reference-server/: nbd-refserver, the reference NBD server.
REFSERVER := reference-server/nbd-refserver
REFSERVER_SRCS := reference-server/main.c reference-server/exports.c \
                  reference-server/connections.c \
                  reference-server/handshake-oldstyle.c \
                  reference-server/handshake-newstyle.c \
                  reference-server/transmission.c \
                  reference-server/commands.c reference-server/reply.c \
                  reference-server/memory.c reference-server/file.c \
                  reference-server/resize-config.c reference-server/resize.c \
                  reference-server/control.c
REFSERVER_OBJS := $(REFSERVER_SRCS:.c=.o)
PROGRAMS += $(REFSERVER)

$(REFSERVER): $(REFSERVER_OBJS) $(LIBNBDP)
	$(CC) $(ALL_LDFLAGS) -o $@ $(REFSERVER_OBJS) $(LIBNBDP)

# The draft RESIZE extension: the control tool and the tests.
-include reference-server/resize.mk
