#!/usr/bin/perl
# A small OpenAI-compatible server that is not kvbench (for the engine-identity, KV-mode and
# per-response reuse tests), on 127.0.0.1 (a free port written to PORTFILE). It answers the way an
# older llama.cpp build does: usage.prompt_tokens and timings.prompt_n (the tokens it evaluated)
# but no timings.cache_n. A prompt it has seen before is "cached" but for its last word, so
# reused = prompt_tokens - prompt_n. OWNER is /v1/models' owned_by. Not streamed answers only.
# Serves at most 300 connections and exits after 120 s either way.
use strict;
use warnings;
use IO::Socket::INET;
use JSON::PP;

my ($owner, $portfile) = @ARGV;
my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 64,
                                ReuseAddr => 1, Proto => 'tcp') or die "listen: $!";
open(my $pf, '>', "$portfile.tmp") or die;
print $pf $srv->sockport(), "\n";
close $pf;
rename("$portfile.tmp", $portfile);
$SIG{ALRM} = sub { exit 0 };
alarm 120;
$SIG{PIPE} = 'IGNORE';
my %seen;
my $n = 0;
sub reply {
    my ($c, $status, $b) = @_;
    print $c "HTTP/1.1 $status\r\nContent-Type: application/json\r\nContent-Length: "
      . length($b) . "\r\nConnection: close\r\n\r\n$b";
}
for (1 .. 300) {
    my $c = $srv->accept or next;
    my ($head, $line, $len) = ('', '', 0);
    while (defined($line = <$c>)) {
        $head .= $line;
        $len = $1 if $line =~ /^Content-Length:\s*(\d+)/i;
        last if $line =~ /^\r?\n$/;
    }
    my $body = '';
    read($c, $body, $len) if $len;
    if ($head =~ m{^GET /v1/models}) {
        reply($c, '200 OK', '{"object":"list","data":[{"id":"foreign","object":"model","owned_by":"'
          . $owner . '"}]}');
    } elsif ($head =~ m{^GET /health}) {
        reply($c, '200 OK', '{"status":"ok"}');
    } elsif ($head =~ m{^POST /v1/completions}) {
        my $req = eval { JSON::PP->new->utf8(0)->decode($body) } || {};
        my $prompt = $req->{prompt} // '';
        # tokens as kvbench's heuristic counts them: runs of word characters, and each other
        # non-space character
        my $pt = () = $prompt =~ /[\w\x80-\x{10FFFF}]+|[^\w\s\x80-\x{10FFFF}]/g;
        $pt ||= 1;
        my $evaluated = $seen{$prompt}++ ? 1 : $pt;
        $n++;
        reply($c, '200 OK', '{"id":"cmpl-' . $n . '","object":"text_completion","model":"foreign",'
          . '"choices":[{"index":0,"text":" fine words here","finish_reason":"length"}],'
          . '"usage":{"prompt_tokens":' . $pt . ',"completion_tokens":3,"total_tokens":'
          . ($pt + 3) . '},"timings":{"prompt_n":' . $evaluated . ',"predicted_n":3}}');
    } else {
        reply($c, '404 Not Found', '{"error":{"code":404,"message":"File Not Found"}}');
    }
    close $c;
}
