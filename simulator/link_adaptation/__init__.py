"""Link adaptation: 38.214 tables, BLER lookup, CQI selection, OLLA."""
