"""The live event stream: the broadcaster and the frames it sends."""
