"""Model families: one typed config and one assembly of ``tfdojo.nn`` parts per family."""
