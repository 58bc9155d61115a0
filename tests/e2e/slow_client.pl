#!/usr/bin/perl
# Hostile and lazy HTTP clients against a server on 127.0.0.1 (tests/e2e/connections.sh,
# conn_floods.sh, backpressure.sh).
# Core modules only. Every mode ends by itself (HOLD / WAIT seconds at most).
#
#   raw PORT FILE WAIT        send FILE's bytes on one connection and read the answer (to its
#                             Content-Length and 0.3 s more, the server's close or WAIT s); print
#                             "FIRST LINE|ms to it|body bytes|ms to the close (-1: open)", the
#                             line "closed" or "no reply" when none came
#   trickle PORT N EVERY HOLD N connections that send a request line and then one header line
#                             every EVERY s, never ending their headers; "ready" when all are open,
#                             and at the end "open N refused R closed C first_ms F last_ms L
#                             still S" (ms from each connection's start to the server's close;
#                             refused: the connect or first write failed)
#   idle PORT N HOLD          N keep-alive connections that each send GET /health, read the whole
#                             answer and then stay idle; summary as for trickle, plus "answered A"
#   noread PORT N FILE HOLD   N connections that each send FILE (a streaming completion) and never
#                             read a byte (receive buffer 4 KiB); "ready" once all are sent, and at
#                             the end "open N"
#   late PORT FILE DELAY WAIT a streaming completion (FILE; HTTP/1.0, so no chunked framing to
#                             read through) read only after DELAY s, then to its end (WAIT s at
#                             most): "events E done 0|1 bytes B"
#   probe PORT N GAP AFTER    N times, GAP s apart: GET /health on a new connection, answered
#                             within 1 s or failed; the connection then stays open, idle (AFTER
#                             "idle") or starting a next request it never ends ("trickle"), so
#                             that every probe finds the slots as full as the first did; ends
#                             with "answered A of N slowest_ms S"
# "ready" is written to the file named by $READY (when set) as well as to stdout.
use strict;
use warnings;
use IO::Socket::INET;
use IO::Poll qw(POLLIN);
use Socket qw(SOL_SOCKET SO_RCVBUF inet_aton sockaddr_in);
use Time::HiRes qw(time sleep);

$SIG{PIPE} = 'IGNORE';
$| = 1;
my ($mode, $port) = (shift @ARGV, shift @ARGV);
die "usage: slow_client.pl MODE PORT ...\n" unless defined $port;

sub ready {
    print "ready\n";
    if (my $f = $ENV{READY}) {
        open(my $fh, '>', $f) or die "$f: $!";
        print $fh "ready\n";
        close $fh;
    }
}

# A connected socket; rcvbuf: its receive buffer, set before the connect so that the window it
# advertises never exceeds it (shrunk later, the peer's sends would be dropped and retried on
# backed-off timers).
sub connect_one {
    my (%o) = @_;
    my $s = IO::Socket::INET->new(Proto => 'tcp') or return undef;
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, pack('i', $o{rcvbuf})) if $o{rcvbuf};
    connect($s, sockaddr_in($port, inet_aton('127.0.0.1'))) or return undef;
    binmode $s;
    return $s;
}

# Has the server closed s? (EOF or an error on a non-blocking read; bytes are discarded.)
sub closed_by_server {
    my ($s) = @_;
    my $buf;
    my $n = sysread($s, $buf, 65536);
    return 1 if defined $n && $n == 0;
    return 0 if !defined $n && ($!{EAGAIN} || $!{EWOULDBLOCK} || $!{EINTR});
    return defined $n ? 0 : 1;
}

# Hold the connections in %$conns (fd => {s, t0, closed}) for $hold s, sending $tick->($c) every
# $every s; returns when all are closed or $hold has passed.
sub hold {
    my ($conns, $hold, $every, $tick) = @_;
    my $end = time + $hold;
    my $next = time + ($every || $hold);
    while (time < $end) {
        my @open = grep { !$_->{closed} } values %$conns;
        last unless @open;
        my $poll = IO::Poll->new;
        $poll->mask($_->{s} => POLLIN) for @open;
        my $wait = ($next < $end ? $next : $end) - time;
        $poll->poll($wait > 0 ? $wait : 0);
        my $now = time;
        for my $c (@open) {
            my $ev = $poll->events($c->{s});
            next unless $ev;
            if (closed_by_server($c->{s})) {
                $c->{closed} = $now;
                close $c->{s};
            }
        }
        if ($every && $now >= $next) {
            for my $c (grep { !$_->{closed} } values %$conns) {
                my $w = syswrite($c->{s}, $tick->($c));
                if (!defined $w) {
                    $c->{closed} = time;
                    close $c->{s};
                }
            }
            $next += $every;
        }
    }
}

sub summary {
    my ($conns, $refused, $extra) = @_;
    my @c = values %$conns;
    my @ms = sort { $a <=> $b } map { ($_->{closed} - $_->{t0}) * 1000 } grep { $_->{closed} } @c;
    my $still = grep { !$_->{closed} } @c;
    printf "open %d refused %d closed %d first_ms %d last_ms %d still %d%s\n", scalar(@c), $refused,
      scalar(@ms), @ms ? $ms[0] : -1, @ms ? $ms[-1] : -1, $still, $extra // '';
    close $_->{s} for grep { !$_->{closed} } @c;
}

if ($mode eq 'raw') {
    my ($file, $wait) = @ARGV;
    open(my $fh, '<', $file) or die "$file: $!";
    binmode $fh;
    local $/;
    my $bytes = <$fh>;
    close $fh;
    my $head = $bytes =~ /^HEAD /;
    my $s = connect_one() or die "connect: $!";
    my $t0 = time;
    syswrite($s, $bytes);
    my $poll = IO::Poll->new;
    $poll->mask($s => POLLIN);
    my ($got, $first_ms, $closed_ms) = ('', -1, -1);
    my $end = $t0 + $wait;
    while (time < $end) {
        $poll->poll($end - time);
        next unless $poll->events($s);
        my $buf;
        my $n = sysread($s, $buf, 65536);
        if (!defined $n || $n == 0) {
            $closed_ms = (time - $t0) * 1000;
            last;
        }
        $got .= $buf;
        $first_ms = (time - $t0) * 1000 if $first_ms < 0 && $got =~ /\n/;
        my $h = index($got, "\r\n\r\n");
        next if $h < 0;
        my $cl = $got =~ /\r\nContent-Length:\s*(\d+)/i ? $1 : undef;
        # answered (for HEAD: any byte after the headers would be a body it must not get): look
        # a little longer, for stray bytes and for whether the server closes
        $end = time + 0.3 if ($head || (defined $cl && length($got) >= $h + 4 + $cl))
                             && $end > time + 0.3;
    }
    my $h = index($got, "\r\n\r\n");
    my $body = $h < 0 ? 0 : length($got) - $h - 4;
    (my $line = $got) =~ s/\r?\n.*//s;
    $line = $closed_ms >= 0 ? 'closed' : 'no reply' if $line eq '';
    printf "%s|%d|%d|%d\n", $line, $first_ms, $body, $closed_ms;
    exit 0;
}

if ($mode eq 'trickle') {
    my ($n, $every, $hold) = @ARGV;
    my (%conns, $refused);
    $refused = 0;
    for my $i (1 .. $n) {
        my $s = connect_one();
        if (!$s) { $refused++; next; }
        my $w = syswrite($s, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        if (!defined $w) { $refused++; close $s; next; }
        $conns{fileno $s} = {s => $s, t0 => time, i => $i, k => 0};
    }
    ready();
    hold(\%conns, $hold, $every, sub { my $c = shift; $c->{k}++; "X-Trickle-$c->{k}: $c->{i}\r\n" });
    summary(\%conns, $refused);
    exit 0;
}

if ($mode eq 'idle') {
    my ($n, $hold) = @ARGV;
    my (%conns, $refused, $answered);
    $refused = $answered = 0;
    for my $i (1 .. $n) {
        my $s = connect_one();
        if (!$s) { $refused++; next; }
        my $t0 = time;
        my $w = syswrite($s, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        if (!defined $w) { $refused++; close $s; next; }
        # read the whole answer: headers, then Content-Length bytes
        my ($got, $ok) = ('', 0);
        my $poll = IO::Poll->new;
        $poll->mask($s => POLLIN);
        my $end = time + 5;
        while (time < $end) {
            $poll->poll($end - time);
            my $buf;
            my $r = sysread($s, $buf, 65536);
            last if !defined $r || $r == 0;
            $got .= $buf;
            if ($got =~ /\r\n\r\n/ && $got =~ /Content-Length:\s*(\d+)/i) {
                my $need = $1 + index($got, "\r\n\r\n") + 4;
                if (length($got) >= $need) { $ok = 1; last; }
            }
        }
        if (!$ok) { $refused++; close $s; next; }
        $answered++;
        $conns{fileno $s} = {s => $s, t0 => $t0};
    }
    ready();
    hold(\%conns, $hold, 0, undef);
    summary(\%conns, $refused, " answered $answered");
    exit 0;
}

if ($mode eq 'noread') {
    my ($n, $file, $hold) = @ARGV;
    open(my $fh, '<', $file) or die "$file: $!";
    local $/;
    my $body = <$fh>;
    close $fh;
    my %conns;
    for (1 .. $n) {
        my $s = connect_one(rcvbuf => 4096) or next;
        syswrite($s, "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   . "Content-Type: application/json\r\nContent-Length: " . length($body)
                   . "\r\n\r\n$body");
        $conns{fileno $s} = {s => $s, t0 => time};
    }
    ready();
    # never read a byte: the server's output piles up in its own buffers
    sleep $hold;
    printf "open %d\n", scalar(keys %conns);
    close $_->{s} for values %conns;
    exit 0;
}
if ($mode eq 'late') {
    my ($file, $delay, $wait) = @ARGV;
    open(my $fh, '<', $file) or die "$file: $!";
    local $/;
    my $body = <$fh>;
    close $fh;
    my $s = connect_one(rcvbuf => 4096) or die "connect: $!";
    syswrite($s, "POST /v1/completions HTTP/1.0\r\nHost: 127.0.0.1\r\n"
               . "Content-Type: application/json\r\nContent-Length: " . length($body)
               . "\r\n\r\n$body");
    sleep $delay;
    my ($got, $end) = ('', time + $wait);
    my $poll = IO::Poll->new;
    $poll->mask($s => POLLIN);
    while (time < $end) {
        $poll->poll($end - time);
        next unless $poll->events($s);
        my $buf;
        my $n = sysread($s, $buf, 65536);
        last if !defined $n || $n == 0;
        $got .= $buf;
        last if $got =~ /data: \[DONE\]/;
    }
    my $events = () = $got =~ /^data: \{/mg;
    printf "events %d done %d bytes %d\n", $events, $got =~ /data: \[DONE\]/ ? 1 : 0, length $got;
    exit 0;
}
if ($mode eq 'probe') {
    my ($n, $gap, $after) = @ARGV;
    my ($answered, $slowest, @keep) = (0, 0);
    for my $i (1 .. $n) {
        my $t0 = time;
        my $s = connect_one();
        my ($got, $ok) = ('', 0);
        if ($s && defined syswrite($s, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")) {
            my $poll = IO::Poll->new;
            $poll->mask($s => POLLIN);
            my $end = $t0 + 1;
            while (!$ok && time < $end) {
                $poll->poll($end - time);
                next unless $poll->events($s);
                my $buf;
                my $r = sysread($s, $buf, 65536);
                last if !defined $r || $r == 0;
                $got .= $buf;
                my $h = index($got, "\r\n\r\n");
                $ok = 1 if $h >= 0 && $got =~ /^HTTP\/1\.1 200 / && $got =~ /Content-Length:\s*(\d+)/i
                           && length($got) >= $h + 4 + $1;
            }
        }
        my $ms = (time - $t0) * 1000;
        (my $line = $got) =~ s/\r?\n.*//s;
        printf "probe %d: %s after %d ms\n", $i, $ok ? 'answered' : "failed ('$line')", $ms;
        $answered++ if $ok;
        $slowest = $ms if $ms > $slowest;
        if ($s) {
            syswrite($s, "GET /health HTTP/1.1\r\n") if $after eq 'trickle';
            push @keep, $s;
        }
        sleep $gap;
    }
    printf "answered %d of %d slowest_ms %d\n", $answered, $n, $slowest;
    close $_ for @keep;
    exit 0;
}
die "unknown mode $mode\n";
