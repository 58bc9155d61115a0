#!/usr/bin/perl
# A small OpenAI-compatible chat server that is not kvbench, on 127.0.0.1 (a free port written to
# PORTFILE), streaming the way chat servers do: a first chunk with only the role
# ({"delta":{"role":"assistant","content":""}}), then a pause of 500 ms, then the output, a finish
# chunk, a usage chunk (with stream_options.include_usage) and [DONE]. A client that takes the
# role chunk for the first token measures a TTFT under 500 ms.
#
#   perl chat_server.pl PORTFILE MODE [SECONDS [BODYLOG]]
#
# MODE: content            the output is delta.content only
#       reasoning_content  delta.reasoning_content first (DeepSeek, SGLang, older vLLM), then
#                          another 500 ms pause, then delta.content
#       reasoning          the same with delta.reasoning (newer vLLM)
# Not streamed, the answer is one chat.completion whose message has the content (and the
# reasoning under the mode's name). Each piece of output is one token as kvbench's heuristic
# counts it, and usage.completion_tokens counts them (at most max_tokens pieces, then
# finish_reason "length"); usage.prompt_tokens is the heuristic count of the messages rendered
# through kvbench's plain chat template. Bodies that are not a chat request (no messages, a
# message without a string role or content, a "prompt") get 400 with an OpenAI error object.
# GET /v1/models and /health answer; anything else 404. BODYLOG, when given, gets each chat
# request's body as one line. Each connection is served by a child of its own (one request,
# then closed); the server exits after SECONDS (default 120).
use strict;
use warnings;
use IO::Socket::INET;
use JSON::PP;
use Fcntl qw(:flock);
use Time::HiRes qw(usleep);

my ($portfile, $mode, $seconds, $bodylog) = @ARGV;
die "usage: chat_server.pl PORTFILE content|reasoning_content|reasoning [SECONDS [BODYLOG]]\n"
  unless defined $mode && $mode =~ /^(content|reasoning_content|reasoning)$/;
$seconds ||= 120;
my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 128,
                                ReuseAddr => 1, Proto => 'tcp') or die "listen: $!";
open(my $pf, '>', "$portfile.tmp") or die "$portfile: $!";
print $pf $srv->sockport(), "\n";
close $pf;
rename("$portfile.tmp", $portfile) or die "$portfile: $!";
$SIG{ALRM} = sub { exit 0 };
$SIG{PIPE} = 'IGNORE';
$SIG{CHLD} = 'IGNORE';
alarm $seconds;

my @REASONING = ('Let', ' me', ' think');
my @ANSWER = ('Hello', ' from', ' chat');
my $json = JSON::PP->new->utf8(0)->canonical(1);

# tokens as kvbench's heuristic counts them: runs of word characters, and each other non-space
# character
sub heuristic_tokens {
    my ($s) = @_;
    my $n = () = $s =~ /[\w\x80-\x{10FFFF}]+|[^\w\s\x80-\x{10FFFF}]/g;
    return $n;
}

sub reply {
    my ($c, $status, $b) = @_;
    syswrite($c, "HTTP/1.1 $status\r\nContent-Type: application/json\r\nContent-Length: "
      . length($b) . "\r\nConnection: close\r\n\r\n$b");
}

sub bad {
    my ($c, $msg) = @_;
    reply($c, '400 Bad Request', $json->encode({error => {message => $msg,
      type => 'invalid_request_error', code => 400}}));
}

sub chunk {
    my ($c, $data) = @_;
    syswrite($c, sprintf("%x\r\n%s\r\n", length($data), $data));
}

sub event {
    my ($c, $obj) = @_;
    chunk($c, 'data: ' . (ref $obj ? $json->encode($obj) : $obj) . "\n\n");
}

# The request's messages rendered as kvbench's plain template renders them.
sub plain_render {
    my ($msgs) = @_;
    my %head = (system => 'System: ', developer => 'System: ', user => 'User: ',
                assistant => 'Assistant:');
    my $t = '';
    for my $m (@$msgs) {
        my $content = ref $m->{content} ? join('', map { $_->{text} // '' } @{$m->{content}})
                                        : $m->{content};
        $t .= $head{$m->{role}} . $content . "\n\n";
    }
    return $t . 'Assistant:';
}

# Undef when the body is a chat request, else why not.
sub invalid {
    my ($req) = @_;
    return 'the body is not a JSON object' unless ref $req eq 'HASH';
    return 'prompt: not a chat field (this is /v1/chat/completions)' if exists $req->{prompt};
    my $msgs = $req->{messages};
    return 'messages: required, a non-empty array' unless ref $msgs eq 'ARRAY' && @$msgs;
    for my $i (0 .. $#$msgs) {
        my $m = $msgs->[$i];
        return "messages[$i]: not an object" unless ref $m eq 'HASH';
        return "messages[$i].role: not one of system, developer, user, assistant"
          unless defined $m->{role} && !ref $m->{role}
          && $m->{role} =~ /^(system|developer|user|assistant)$/;
        my $ct = $m->{content};
        return "messages[$i].content: not a string or a list of text parts"
          unless (defined $ct && !ref $ct)
          || (ref $ct eq 'ARRAY' && !grep { ref $_ ne 'HASH' || ($_->{type} // '') ne 'text' } @$ct);
    }
    return undef;
}

sub serve_chat {
    my ($c, $body) = @_;
    my $req = eval { $json->decode($body) };
    return bad($c, 'the body is not JSON') unless defined $req;
    my $why = invalid($req);
    return bad($c, $why) if defined $why;
    if (defined $bodylog && open(my $lf, '>>', $bodylog)) {
        flock($lf, LOCK_EX);
        print $lf $body, "\n";
        close $lf;
    }
    my $max = $req->{max_tokens} // $req->{max_completion_tokens} // 1 << 30;
    my @think = $mode eq 'content' ? () : @REASONING;
    my @say = @ANSWER;
    # max_tokens pieces at most, reasoning first
    my $room = $max;
    @think = @think[0 .. ($room < @think ? $room : @think) - 1];
    $room -= @think;
    @say = @say[0 .. ($room < @say ? $room : @say) - 1];
    my $whole = ($mode eq 'content' ? 0 : @REASONING) + @ANSWER;
    my $finish = @think + @say < $whole ? 'length' : 'stop';
    my $usage = {prompt_tokens => heuristic_tokens(plain_render($req->{messages})),
                 completion_tokens => @think + @say};
    $usage->{total_tokens} = $usage->{prompt_tokens} + $usage->{completion_tokens};
    my $id = "chatcmpl-$$";
    my %head = (id => $id, object => 'chat.completion.chunk', created => time,
                model => $req->{model} // 'chat-test');
    if (!$req->{stream}) {
        my $msg = {role => 'assistant', content => @say ? join('', @say) : undef};
        $msg->{$mode} = join('', @think) if $mode ne 'content';
        reply($c, '200 OK', $json->encode({%head, object => 'chat.completion',
          choices => [{index => 0, message => $msg, finish_reason => $finish}],
          usage => $usage}));
        return;
    }
    syswrite($c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
      . "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    my $delta = sub {
        return {%head, choices => [{index => 0, delta => $_[0], finish_reason => undef}]};
    };
    event($c, $delta->({role => 'assistant', content => ''}));
    usleep(500_000);
    event($c, $delta->({$mode => $_})) for @think;
    usleep(500_000) if @think;
    event($c, $delta->({content => $_})) for @say;
    event($c, {%head, choices => [{index => 0, delta => {}, finish_reason => $finish}]});
    event($c, {%head, choices => [], usage => $usage})
      if ref $req->{stream_options} eq 'HASH' && $req->{stream_options}{include_usage};
    event($c, '[DONE]');
    chunk($c, '');
}

sub serve {
    my ($c) = @_;
    my ($head, $line, $len) = ('', '', 0);
    while (defined($line = <$c>)) {
        $head .= $line;
        $len = $1 if $line =~ /^Content-Length:\s*(\d+)/i;
        last if $line =~ /^\r?\n$/;
    }
    my $body = '';
    while (length($body) < $len) {
        my $n = read($c, $body, $len - length($body), length($body));
        last unless $n;
    }
    if ($head =~ m{^GET /v1/models}) {
        reply($c, '200 OK', '{"object":"list","data":[{"id":"chat-test","object":"model",'
          . '"owned_by":"chat_server"}]}');
    } elsif ($head =~ m{^GET /health}) {
        reply($c, '200 OK', '{"status":"ok"}');
    } elsif ($head =~ m{^POST /v1/chat/completions}) {
        serve_chat($c, $body);
    } else {
        reply($c, '404 Not Found', '{"error":{"code":404,"message":"File Not Found"}}');
    }
}

while (1) {
    my $c = $srv->accept or next;
    my $pid = fork;
    if (!defined $pid) {
        serve($c); # no child to be had: serve it here
        close $c;
        next;
    }
    if ($pid == 0) {
        alarm 30; # a child never outlives a stuck client by long
        close $srv;
        serve($c);
        close $c;
        exit 0;
    }
    close $c;
}
