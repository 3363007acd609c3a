import streamlit as st

st.title("model_outputs")
st.info("This page is being built.")
