# A loopback TCP proxy that delays each request chunk (client to server) by DELAY seconds:
# an S3 server "far away" for read-ahead measurements.
import asyncio, sys
LISTEN, TARGET, DELAY = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
async def pipe(r, w, delay):
    try:
        while data := await r.read(65536):
            if delay: await asyncio.sleep(delay)
            w.write(data); await w.drain()
    except Exception: pass
    finally: w.close()
async def handle(cr, cw):
    sr, sw = await asyncio.open_connection('127.0.0.1', TARGET)
    await asyncio.gather(pipe(cr, sw, DELAY), pipe(sr, cw, 0))
async def main():
    s = await asyncio.start_server(handle, '127.0.0.1', LISTEN)
    async with s: await s.serve_forever()
asyncio.run(main())
