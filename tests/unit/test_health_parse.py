"""
k8s_health._parse_show_stat on haproxy's ``show stat`` CSV, and haproxy_backends
reading it from a stats socket.
"""

import os
import re
import socket
import tempfile
import threading

import pytest
from salt.exceptions import CommandExecutionError

# Captured from HAProxy 2.6.12 (Debian 12) running the project's two backends
# (option httpchk GET /readyz; option tcp-check), server addresses rewritten to
# the seed's: k8s-controller-1 up, k8s-controller-2 refusing connections,
# k8s-controller-3 disabled (MAINT) in one backend and unchecked in the other.
# Two FRONTEND and two BACKEND rows, 128 columns, trailing commas, a blank
# line at the end, exactly as the stats socket sends them.
SHOW_STAT = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,"
    "wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttl"
    "e,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_"
    "1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_to"
    "t,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,"
    "ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_ris"
    "e,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_"
    "rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache"
    "_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_"
    "conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,a"
    "gg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_"
    "rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors"
    ",h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,"
    "h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connection"
    "s,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spli"
    "ced_bytes_in,h1_spliced_bytes_out,\n"
    "k8s-controller-http,FRONTEND,,,0,0,100,0,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,0,,,,"
    "0,0,0,0,0,0,,0,0,0,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,http,,0,0,0,0,0,0,0,,,0,0,,,,,,,0,,,,,,"
    ",,,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,\n"
    "k8s-controller-tls,FRONTEND,,,0,0,100,0,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,3,0,,,,0,0,0,0,,,,,"
    ",,,,,,0,0,0,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,tcp,,0,0,0,,0,0,0,,,,,,,,,,,0,,,,,,,,,-,0,0,0,"
    "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,\n"
    "k8s-controller,k8s-controller-1,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1,1,0,1,1,3,1,,1,4,1,,0,,2"
    ",0,,0,L7OK,200,1,0,0,0,0,0,0,,,,0,0,0,,,,,-1,,,0,0,0,0,,,,Layer7 check passed,,2,2,3,,,,"
    "10.240.0.11:6443,,http,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,"
    ",,,,,\n"
    "k8s-controller,k8s-controller-2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1,1,0,1,1,3,3,,1,4,2,,0,"
    ",2,0,,0,L4CON,,0,0,0,0,0,0,0,,,,0,0,0,,,,,-1,Connection refused,,0,0,0,0,,,,Layer4 conne"
    "ction problem,,2,2,0,,,,10.240.0.12:6443,,http,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,"
    "-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n"
    "k8s-controller,k8s-controller-3,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT,1,1,0,0,0,4,4,,1,4,3,,0"
    ",,2,0,,0,,,,0,0,0,0,0,0,,,,0,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,10.240.0.13:6443,,http,,,,,"
    ",,,0,0,0,,,0,,0,0,0,0,0,0,0,0,0,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n"
    "k8s-controller,BACKEND,0,0,0,0,10,0,0,0,0,0,,0,0,0,0,UP,1,1,0,,1,3,0,,1,4,0,,0,,1,0,,0,,"
    ",,0,0,0,0,0,0,,,,0,0,0,0,0,0,0,-1,,,0,0,0,0,,,,,,,,,,,,,,http,roundrobin,,,,,,,0,0,0,0,0"
    ",,,0,0,0,0,0,,,,,1,0,0,0,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,13,13,556,144,0,0,\n"
    "k8s-controller-tls,k8s-controller-1,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,4,0,,1,5,1,,"
    "0,,2,0,,0,L4OK,,0,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,Layer4 check passed,,2,2,3,,,,10.240"
    ".0.11:6443,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n"
    "k8s-controller-tls,k8s-controller-2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1,1,0,1,1,3,3,,1,5,2"
    ",,0,,2,0,,0,L4CON,,0,,,,,,,,,,,0,0,,,,,-1,Connection refused at initial connection step "
    "of tcp-check,,0,0,0,0,,,,Layer4 connection problem,,2,2,0,,,,10.240.0.12:6443,,tcp,,,,,,"
    ",,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n"
    "k8s-controller-tls,k8s-controller-3,0,0,0,0,,0,0,0,,0,,0,0,0,0,no check,1,1,0,,,4,,,1,5,"
    "3,,0,,2,0,,0,,,,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,10.240.0.13:6443,,tcp,,,,,,,,0"
    ",0,0,,,0,,0,0,0,0,0,0,0,0,0,1,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,\n"
    "k8s-controller-tls,BACKEND,0,0,0,0,10,0,0,0,0,0,,0,0,0,0,UP,2,2,0,,0,4,0,,1,5,0,,0,,1,0,"
    ",0,,,,,,,,,,,,,,0,0,0,0,0,0,-1,,,0,0,0,0,,,,,,,,,,,,,,tcp,roundrobin,,,,,,,0,0,0,,,,,0,0"
    ",0,0,0,,,,,2,0,0,0,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,\n"
    "\n"
)

EXPECTED = [
    {
        "proxy": "k8s-controller",
        "server": "k8s-controller-1",
        "status": "UP",
        "check": "L7OK",
        "sessions": 0,
    },
    {
        "proxy": "k8s-controller",
        "server": "k8s-controller-2",
        "status": "DOWN",
        "check": "L4CON",
        "sessions": 0,
    },
    {
        "proxy": "k8s-controller",
        "server": "k8s-controller-3",
        "status": "MAINT",
        "check": "",
        "sessions": 0,
    },
    {
        "proxy": "k8s-controller-tls",
        "server": "k8s-controller-1",
        "status": "UP",
        "check": "L4OK",
        "sessions": 0,
    },
    {
        "proxy": "k8s-controller-tls",
        "server": "k8s-controller-2",
        "status": "DOWN",
        "check": "L4CON",
        "sessions": 0,
    },
    {
        "proxy": "k8s-controller-tls",
        "server": "k8s-controller-3",
        "status": "no check",
        "check": "",
        "sessions": 0,
    },
]


@pytest.fixture
def k8s_health(modules):
    return modules("k8s_health")


def test_sample_is_haproxy_2_6_show_stat():
    header = SHOW_STAT.splitlines()[0]
    assert header.startswith("# pxname,svname,qcur,")
    assert len(header.removesuffix(",").split(",")) == 128
    assert SHOW_STAT.count(",FRONTEND,") == 2
    assert SHOW_STAT.count(",BACKEND,") == 2


def test_parse_show_stat(k8s_health):
    assert k8s_health._parse_show_stat(SHOW_STAT) == EXPECTED


def test_frontend_and_backend_rows_are_skipped(k8s_health):
    servers = {row["server"] for row in k8s_health._parse_show_stat(SHOW_STAT)}
    assert servers == {"k8s-controller-1", "k8s-controller-2", "k8s-controller-3"}


@pytest.mark.parametrize(
    ("status", "check"),
    [("UP 1/2", "L7OK"), ("DOWN 1/2", "L7STS"), ("DRAIN", "L6OK"), ("NOLB", "L4OK")],
)
def test_transitional_statuses(k8s_health, status, check):
    text = SHOW_STAT.replace(",UP,1,1,0,1,1,3,1,", f",{status},1,1,0,1,1,3,1,", 1)
    text = text.replace(",L7OK,200,", f",{check},200,", 1)
    assert k8s_health._parse_show_stat(text)[0] == {
        "proxy": "k8s-controller",
        "server": "k8s-controller-1",
        "status": status,
        "check": check,
        "sessions": 0,
    }


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(lambda t: t.rstrip("\n"), id="no-trailing-newline"),
        pytest.param(lambda t: t.replace("\n", "\r\n"), id="crlf"),
        pytest.param(lambda t: t.removeprefix("# "), id="header-without-hash"),
    ],
)
def test_variants(k8s_health, variant):
    assert k8s_health._parse_show_stat(variant(SHOW_STAT)) == EXPECTED


@pytest.mark.parametrize("text", ["", "\n", SHOW_STAT.splitlines(keepends=True)[0]])
def test_no_servers(k8s_health, text):
    assert k8s_health._parse_show_stat(text) == []


@pytest.fixture
def stats_socket():
    """A unix socket that answers one `show stat` with the sample, as haproxy does."""
    directory = tempfile.mkdtemp(prefix="hap-", dir="/tmp")
    path = os.path.join(directory, "haproxy.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    received = []

    def serve():
        conn, _ = server.accept()
        with conn:
            received.append(conn.recv(1024))
            conn.sendall(SHOW_STAT.encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path, received
    thread.join(timeout=5)
    server.close()
    os.unlink(path)
    os.rmdir(directory)


def test_haproxy_backends_reads_the_stats_socket(modules, stats_socket):
    path, received = stats_socket
    mod = modules("k8s_health")
    assert mod.haproxy_backends(path) == EXPECTED
    assert received == [b"show stat\n"]


def test_haproxy_backends_without_socket(modules):
    mod = modules("k8s_health")
    path = "/nonexistent/haproxy.sock"
    with pytest.raises(CommandExecutionError, match=re.escape(f"haproxy stats socket {path}")):
        mod.haproxy_backends(path)
