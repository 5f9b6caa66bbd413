"""gunicorn settings of every API of the reference site (`gunicorn -c`).

gunicorn 25's gthread worker hands a newly accepted connection to a worker
thread at once, and that thread waits up to 5 s
(`gunicorn.workers.gthread.DEFAULT_WORKER_DATA_TIMEOUT`) for the first
request before it gives the connection back to the poller. The APIs run one
thread (REFSITE_THREADS=1: SQLite), so a client that opens a connection and
does not use it at once stalls every other request of that API for 5 s. HTTP
client pools do exactly that: hyper (reqwest, the appliance) races a new
connection against one being returned to the pool and keeps the loser idle
for later. Measured: `info show` took 5.1 s instead of 0.3 s in about one
run in four, the request on the keep-alive connection answered 5.0 s late
while the thread sat on the idle one (issue #14 item 12). Production APIs
(Apache mod_wsgi, uwsgi) serve with many threads and never show this.

0 = look once, then leave a silent connection to the poller, which hands it
to the thread when its request arrives (what gunicorn < 25 did): the one
thread is never parked on an idle socket.
"""

import gunicorn.workers.gthread as _gthread

_gthread.DEFAULT_WORKER_DATA_TIMEOUT = 0.0
