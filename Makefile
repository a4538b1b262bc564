# Thin wrapper around run.sh (which needs nothing but Python >= 3.11).
.PHONY: test demo setup
test:
	bash run.sh test
demo:
	bash run.sh demo
setup:
	bash run.sh setup
