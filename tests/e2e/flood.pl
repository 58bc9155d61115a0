#!/usr/bin/perl
# Connection floods against a server on 127.0.0.1 (hardening tests). MODE:
#   slow    - N connections that send a partial request header and then nothing, held HOLD s
#   garbage - one connection sending a garbage request line; prints the first reply line (or
#             "closed" / "no reply") and exits
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;

my ($mode, $port, $n, $hold) = @ARGV;
$SIG{PIPE} = 'IGNORE';
if ($mode eq 'garbage') {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp')
      or die "connect: $!";
    print $s "GARBAGE-THAT-IS-NOT-HTTP\r\n\r\n";
    my $sel = IO::Select->new($s);
    if ($sel->can_read($hold || 5)) {
        my $line = <$s>;
        print defined $line ? $line : "closed\n";
    } else {
        print "no reply\n";
    }
    exit 0;
}
my @socks;
for (1 .. $n) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp',
                                  Timeout => 2) or next;
    syswrite($s, "GET /health HTTP/1.1\r\nHost: x\r\n");
    push @socks, $s;
}
print scalar(@socks), " connections open\n";
sleep $hold;
close $_ for @socks;
