#!/usr/bin/perl
# A hostile OpenAI-compatible server for the hardening tests, on 127.0.0.1 (a free port written to
# PORTFILE). MODE:
#   endless  - completions answer 200 text/event-stream and then one SSE line of BYTES bytes with
#              no newline (or, non-streamed, a JSON body that never ends)
#   echo-key - completions answer 401 with the request's Authorization header in the error body
#   die-at   - completions stream a whole short answer (5 tokens, finish_reason, [DONE]) until the
#              BYTES-th, at which the server exits unanswering: it went away at a run's end
# /v1/models lists "hostile". Serves at most 200 connections and exits after 120 s either way.
use strict;
use warnings;
use IO::Socket::INET;

my ($mode, $portfile, $bytes) = @ARGV;
$bytes ||= 300 * 1024 * 1024;
my $completions = 0;
my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 64,
                                ReuseAddr => 1, Proto => 'tcp') or die "listen: $!";
open(my $pf, '>', "$portfile.tmp") or die;
print $pf $srv->sockport(), "\n";
close $pf;
rename("$portfile.tmp", $portfile);
$SIG{ALRM} = sub { exit 0 };
alarm 120;
$SIG{PIPE} = 'IGNORE';
for (1 .. 200) {
    my $c = $srv->accept or next;
    my ($head, $line, $len) = ('', '', 0);
    while (defined($line = <$c>)) {
        $head .= $line;
        $len = $1 if $line =~ /^Content-Length:\s*(\d+)/i;
        last if $line =~ /^\r?\n$/;
    }
    my $body = '';
    read($c, $body, $len) if $len;
    my ($auth) = $head =~ /^Authorization:\s*([^\r\n]*)/mi;
    if ($head =~ m{^GET /v1/models}) {
        my $b = '{"object":"list","data":[{"id":"hostile","object":"model","owned_by":"x"}]}';
        print $c "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
          . length($b) . "\r\nConnection: close\r\n\r\n$b";
    } elsif ($mode eq 'echo-key') {
        my $b = '{"error":{"message":"invalid credentials: ' . ($auth // '') . '","type":"auth"}}';
        print $c "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: "
          . length($b) . "\r\nConnection: close\r\n\r\n$b";
    } elsif ($mode eq 'die-at') {
        exit 0 if ++$completions >= $bytes;
        my $b = '';
        $b .= 'data: {"choices":[{"index":0,"text":" w","finish_reason":null}]}' . "\n\n" for 1 .. 5;
        $b .= 'data: {"choices":[{"index":0,"text":"","finish_reason":"length"}]}' . "\n\n"
          . "data: [DONE]\n\n";
        print $c "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: "
          . length($b) . "\r\nConnection: close\r\n\r\n$b";
    } else {
        my $stream = $body =~ /"stream"\s*:\s*true/;
        print $c "HTTP/1.1 200 OK\r\nContent-Type: "
          . ($stream ? "text/event-stream" : "application/json") . "\r\nConnection: close\r\n\r\n";
        print $c ($stream ? 'data: {"choices":[{"text":"' : '{"choices":[{"text":"');
        my $chunk = 'a' x 65536;
        for (my $sent = 0; $sent < $bytes; $sent += length $chunk) {
            last unless print $c $chunk;
        }
    }
    close $c;
}
