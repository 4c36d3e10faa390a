"""What must hold after any fault scenario, read from the table itself (and what receivers saw).

One module per async path, each a function returning the promises that do not hold (empty when all
do), so a failing test names every one at once.
"""
